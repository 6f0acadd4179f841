"""TCP checks made before anything starts, so that a wrong address or a busy port costs one line."""

from __future__ import annotations

import socket


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def unreachable(host: str, port: int, timeout: float = 5.0) -> str | None:
    """Why nothing answers at ``host:port`` (such as "Connection refused"), or None if something does."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return _reason(exc)


def cannot_listen(host: str, port: int) -> str | None:
    """Why this process cannot listen on ``host:port`` (such as "Address already in use"), or None."""
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return _reason(exc)
