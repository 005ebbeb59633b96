"""What the language-server tests share: opening and editing buffers, waiting (bounded) for the
diagnostics the server pushes, and protocol positions computed independently of the server."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

WAIT_S = 60  # an upper bound for a push to arrive on a loaded machine, never a timing assertion
PUBLISH = types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS


def utf16(text: str) -> int:
    """The length of `text` in UTF-16 code units, as the protocol counts columns."""
    return len(text.encode("utf-16-le")) // 2


def position(text: str, needle: str, *, nth: int = 0, into: int = 0) -> types.Position:
    """The position `into` characters into the `nth` occurrence of `needle` in `text`."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += into
    line = text.count("\n", 0, at)
    start = text.rfind("\n", 0, at) + 1
    return types.Position(line=line, character=utf16(text[start:at]))


def uri(path: Path) -> str:
    return path.resolve().as_uri()


class Docs:
    """Buffers opened in the server, with their versions."""

    def __init__(self, client: LanguageClient):
        self.client = client
        self.versions: dict[str, int] = {}

    def open(self, path: Path, text: str | None = None) -> str:
        u = uri(path)
        self.client.diagnostics.pop(u, None)
        self.versions[u] = 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=u, language_id="astra", version=1, text=path.read_text(encoding="utf-8") if text is None else text)))
        return u

    def change(self, u: str, text: str, *, forget: tuple[str, ...] = ()) -> None:
        """Replace the whole buffer (unsaved); `forget` clears the pushed diagnostics of other files
        too, so that the next wait sees a fresh push."""
        for f in (u, *forget):
            self.client.diagnostics.pop(f, None)
        self.versions[u] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=u, version=self.versions[u]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def edit(self, u: str, rng: types.Range, text: str) -> None:
        """An incremental edit, as editors send while typing."""
        self.client.diagnostics.pop(u, None)
        self.versions[u] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=u, version=self.versions[u]),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)]))

    def close(self, u: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=u)))


async def diagnostics(client: LanguageClient, u: str, until=lambda ds: True) -> list[types.Diagnostic]:
    """The diagnostics pushed for `u`, once some satisfying `until` arrived (bounded wait)."""

    async def wait() -> list[types.Diagnostic]:
        while True:
            if u in client.diagnostics and until(list(client.diagnostics[u])):
                return list(client.diagnostics[u])
            await client.wait_for_notification(PUBLISH)

    return await asyncio.wait_for(wait(), WAIT_S)


def tdi(u: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=u)


async def settle(client: LanguageClient, done) -> None:
    """Wait (bounded) until `done()` holds after some push; the caller then asserts it, so a
    timeout shows the difference instead of hiding it."""

    async def wait() -> None:
        while not done():
            await client.wait_for_notification(PUBLISH)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait(), WAIT_S)
