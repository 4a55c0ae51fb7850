"""The one error root of ssmd, with errors that carry the data needed to act on them.

Every error a user can cause (a bad setting, a bad argument, an unreachable server, a malformed
frame) is an :class:`SsmdError`; the CLI prints it as one line and exits non-zero, never a traceback.
"""

from __future__ import annotations


class SsmdError(Exception):
    """Root of every error ssmd raises on purpose."""


class ConfigError(SsmdError):
    """A setting or command-line argument is missing or invalid."""


class InvalidNameError(SsmdError):
    """A name component (env, feed, type, symbol, date) cannot form a valid key or subject."""


class DecodeError(SsmdError):
    """Bytes that should hold an ssmd record (or an exchange frame) could not be decoded.

    ``subject`` and ``seq`` say where the bad message came from, when known.
    """

    def __init__(self, message: str, *, subject: str | None = None, seq: int | None = None) -> None:
        super().__init__(message)
        self.subject = subject
        self.seq = seq

    def __str__(self) -> str:
        where = ""
        if self.subject is not None:
            where = f" (subject {self.subject}" + (f", seq {self.seq})" if self.seq is not None else ")")
        return f"{self.args[0]}{where}"


class ServerError(SsmdError):
    """An embedded or external server could not be started or reached."""


class StoreError(SsmdError):
    """An object-store operation failed; ``key`` names the object."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class NotBuiltError(SsmdError):
    """A CLI command that is named but not built yet."""
