"""The one error class for user mistakes, and the exit codes of the command line."""

from __future__ import annotations

import enum


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
