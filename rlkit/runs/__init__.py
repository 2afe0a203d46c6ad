"""What is done with a run folder: train into it, play from it, resume it."""
