"""The one exception type the command-line entry points turn into a one-line message."""


class RlkitError(Exception):
    """Bad user input or state: the message names the bad value and the fix."""
