"""The one error class for user mistakes, and the exit codes of the command line."""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Exit codes of ``harness``; scripts may rely on them."""

    OK = 0
    """Everything asked for ran and finished."""
    JOBS_FAILED = 1
    """The sweep ran to its end but some jobs failed (their runs are FAILED, with tracebacks)."""
    USAGE_ERROR = 2
    """Bad input: an unknown name, a bad value, a missing file. Nothing was run or recorded."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C; the interrupted runs are KILLED."""


class UsageError(Exception):
    """A mistake the user can fix: the message names the bad value and what would be valid."""


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the known name closest to ``name``, else ``""``: the hint that
    every message about an unknown name carries, worded once."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
