"""The one exception type the command-line entry points turn into a one-line message."""


class RlkitError(Exception):
    """Bad user input or state: the message names the bad value and the fix."""


class NonFiniteLossError(RlkitError):
    """A learning update produced NaN or inf: the run stops before that state can be saved."""
