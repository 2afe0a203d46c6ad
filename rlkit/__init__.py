"""rlkit: tabular Q-learning and DQN behind one agent interface, configured with Hydra."""

__version__ = "0.1.0"
