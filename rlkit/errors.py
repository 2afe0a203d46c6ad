"""The one exception type the command-line entry points turn into a one-line message, and the ways any error's
text, or any string read from a run folder, becomes short and safe to print."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any


class RlkitError(Exception):
    """Bad user input or state: the message names the bad value and the fix."""


class NonFiniteLossError(RlkitError):
    """A learning update produced NaN or inf: the run stops before that state can be saved."""


FIRST, LAST = slice(0, 1), slice(-1, None)  # one_line's usual picks: a Hydra error's first line, a torch error's last
MAX_LINE_CHARS = 300  # an error line as printed, its `error: ` included
# C0 and C1 controls (ESC, CR, NUL, 0x9b CSI), line separators, bidi overrides (Trojan Source), lone surrogates
# (a non-UTF-8 file name): a terminal obeys them, and a surrogate cannot even be printed.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """text with each control character spelled as an escape (\\x1b, \\r, \\u202e): a string from a run folder can
    neither clear the screen, set the clipboard (OSC 52) nor hide what follows it."""
    return _CONTROLS.sub(lambda match: repr(match.group())[1:-1], text)


def _cut(text: str, limit: int) -> str:
    """text's start and end around ' ... ' when it is longer than limit."""
    if len(text) <= limit:
        return text
    head = (limit - 5) * 2 // 3
    return f"{text[:head]} ... {text[len(text) - (limit - 5 - head):]}"


def shorten(value: Any, limit: int = 80) -> str:
    """A value as a message shows it, in about `limit` characters: a long string cut, a long list or mapping as its
    first items and a count, `[1, 2, 3, ... (2,999,997 more)]`; nothing long is formatted whole."""
    if isinstance(value, (Mapping, Sequence)) and not isinstance(value, (str, bytes)):
        if limit < 12:
            return "[...]" if isinstance(value, Sequence) else "{...}"
        if isinstance(value, Mapping):
            pairs = itertools.islice(value.items(), 3)
            items, ends = [f"{shorten(k, limit // 8)}: {shorten(v, limit // 4)}" for k, v in pairs], "{}"
        else:
            items, ends = [shorten(item, limit // 4) for item in itertools.islice(value, 3)], "[]"
        more = [f"... ({len(value) - 3:,} more)"] if len(value) > 3 else []
        return ends[0] + ", ".join(items + more) + ends[1]
    try:
        text = str(value)
    except ValueError:  # an integer of more digits than Python will print
        return f"<a {type(value).__name__} too long to show>"
    kept = max(limit - 30, 8)
    return text if len(text) <= limit else f"{text[:kept]}... ({len(text) - kept:,} more characters)"


def one_line(exc: BaseException, *, lines: slice = slice(None), limit: int = MAX_LINE_CHARS - len("error: ")) -> str:
    """The non-blank lines of an error's message that `lines` picks, stripped, escaped and joined with '; ', at most
    `limit` characters (its start and end kept); the error's type where it says nothing."""
    text = _cut(str(exc), 40 * limit)  # a 50 MB message is cut before it is split and escaped
    chosen = [printable(line.strip()) for line in text.split("\n") if line.strip()][lines]  # a bare \r is shown
    return _cut("; ".join(chosen) or type(exc).__name__, limit)
