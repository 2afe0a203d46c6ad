"""The sweep callback's first dotted path, rlkit.callbacks.SweepSummary, for configs that still name it."""

from rlkit.cli.callbacks import SweepSummary

__all__ = ["SweepSummary"]
