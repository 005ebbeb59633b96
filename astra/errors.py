"""The exception for bad input data, shared by both engines and the table reader."""

from __future__ import annotations


class DataError(Exception):
    """A bad input (spine, source file, service name): the message says what was expected and found.

    The CLI prints it as `error: <message>` and exits 1, never with a traceback.  The offline
    engine's `BackfillError` is this class under the name its users know.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
