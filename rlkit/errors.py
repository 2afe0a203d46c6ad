"""The one exception type the command-line entry points turn into a one-line message, and the one way any
error's text becomes that line."""


class RlkitError(Exception):
    """Bad user input or state: the message names the bad value and the fix."""


class NonFiniteLossError(RlkitError):
    """A learning update produced NaN or inf: the run stops before that state can be saved."""


FIRST, LAST = slice(0, 1), slice(-1, None)  # one_line's usual picks: a Hydra error's first line, a torch error's last


def one_line(exc: BaseException, *, lines: slice = slice(None)) -> str:
    """The non-blank lines of an error's message that `lines` picks, stripped and joined with '; '; the error's type
    where it says nothing."""
    chosen = [line.strip() for line in str(exc).splitlines() if line.strip()][lines]
    return "; ".join(chosen) or type(exc).__name__
