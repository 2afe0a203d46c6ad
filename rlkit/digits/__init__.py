"""The supervised digits trainer, on the same bodies and optimizers as the Q-networks."""
