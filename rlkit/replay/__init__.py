"""Experience replay: the buffers, their rings of rows, and the samplers that pick rows."""
