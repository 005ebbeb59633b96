"""The one exception the offline engine raises for bad inputs."""

from __future__ import annotations


class BackfillError(Exception):
    """A bad input (spine, source file, service name): the message says what was expected and found.

    The CLI prints it as `error: <message>` and exits 1, never with a traceback.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
