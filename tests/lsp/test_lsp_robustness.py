"""Malformed input of any kind never ends the session: hostile buffers one after another, files
deleted while open, positions past the end, buffers that are not files.  After each, every
request still answers, nothing is logged as a server failure, and the server then works normally."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_expected import compiled, pushed
from lsp_session import Docs, diagnostics, position, settle, tdi, uri
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTILE = [
    "\x00\x01\x02\x7f\ufffe binary junk {{{ }}} \"unterminated",
    "features x v",
    "features scratch v1 for user {\n    a: int64 = count(transactions,",
    "features s v1 for user { a: int64 = " + "(" * 3000 + "1" + ")" * 3000 + " }",
    "}" * 200 + "{" * 200,
    'import "' + "../" * 60 + 'etc"\nimport "/"\nimport "scratch.feat"\nimport "\\u0000"\n',
    "features s v1 for user { a: string = \"" + "a" * 200_000 + "\" }",
    "entity 🎉 { key 🎉: int64 }\nfeatures \U0001d538 v1 for 🎉 { x: int64 = 1 }",
    "features s v99999999999999999999999 for user { a: int64 = 99999999999999999999999 }",
    "service s v1 { user_spend@v1.* user_spend@v1.* as }",
    "",
]

FAR = types.Position(line=10_000, character=10_000)


async def every_request(client, u: str, text: str) -> None:
    """Ask everything at a few places, past the end included; each must be answered."""
    middle = types.Position(line=text.count("\n") // 2, character=3)
    for pos in (types.Position(line=0, character=0), middle, FAR):
        await client.text_document_hover_async(types.HoverParams(text_document=tdi(u), position=pos))
        await client.text_document_completion_async(types.CompletionParams(text_document=tdi(u), position=pos))
        await client.text_document_definition_async(types.DefinitionParams(text_document=tdi(u), position=pos))
        await client.text_document_signature_help_async(types.SignatureHelpParams(text_document=tdi(u), position=pos))
        await client.text_document_references_async(types.ReferenceParams(
            text_document=tdi(u), position=pos, context=types.ReferenceContext(include_declaration=True)))
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=tdi(u)))
    await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=tdi(u), options=types.FormattingOptions(tab_size=4, insert_spaces=True)))
    await client.text_document_code_action_async(types.CodeActionParams(
        text_document=tdi(u), range=types.Range(start=types.Position(line=0, character=0), end=FAR),
        context=types.CodeActionContext(diagnostics=[])))


def failures(client) -> list[str]:
    return [m.message for m in client.log_messages if m.type == types.MessageType.Error]


async def still_works(client, project: Path) -> None:
    spend = project / "spend.feat"
    u = Docs(client).open(spend)
    assert await diagnostics(client, u) == []
    h = await client.text_document_hover_async(types.HoverParams(
        text_document=tdi(u), position=position(spend.read_text(encoding="utf-8"), "tx_mean_7d", into=1)))
    assert "float64?" in h.contents.value


async def test_hostile_edits_in_sequence(client, project: Path):
    path = project / "scratch.feat"
    path.write_text('import "common/"\n', encoding="utf-8")
    docs = Docs(client)
    u = docs.open(path)
    await diagnostics(client, u)
    for text in HOSTILE:
        docs.change(u, text)
        if text.strip():
            await diagnostics(client, u, lambda ds: len(ds) > 0)
        await every_request(client, u, text)
    # an incremental edit whose range lies past the end of the buffer, and one splitting an emoji
    docs.change(u, "# 🎉\n")
    docs.edit(u, types.Range(start=FAR, end=FAR), "entity e { key k: int64 }")
    docs.edit(u, types.Range(start=types.Position(line=0, character=3), end=types.Position(line=0, character=3)), "x")
    await every_request(client, u, "# 🎉\n")
    docs.change(u, 'import "common/"\n')
    assert await diagnostics(client, u) == []
    docs.close(u)
    assert failures(client) == []
    await still_works(client, project)


async def test_a_file_deleted_while_open(client, project: Path, tmp_path: Path):
    docs = Docs(client)
    doomed = project / "doomed.feat"
    doomed.write_text('import "common/"\nfeatures doomed v1 for user {\n    n: int64 = count(transactions, 1d)\n}\n',
                      encoding="utf-8")
    u = docs.open(doomed)
    await diagnostics(client, u)
    doomed.unlink()
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=u, type=types.FileChangeType.Deleted)]))
    # the buffer is still checked, with what it imports (`user`, `transactions` stay known)
    docs.change(u, 'import "common/"\nfeatures doomed v1 for user {\n    n: int64 = count(transactions, 1d) +\n}\n')
    ds = await diagnostics(client, u, lambda ds: any(d.code.startswith("E00") for d in ds))
    assert all(d.code.startswith("E00") for d in ds)
    docs.change(u, 'import "common/"\nfeatures doomed v1 for user {\n    n: int64 = count(transactions, 1d)\n}\n')
    assert await diagnostics(client, u) == []
    await every_request(client, u, "x\n")
    docs.close(u)
    # a file the project imports, deleted while its buffer is open: `astra compile` would report
    # the import, and so does the server; restored, the project is clean again
    entities = project / "common" / "entities.feat"
    saved = entities.read_text(encoding="utf-8")
    e = docs.open(entities)
    await diagnostics(client, e)
    entities.unlink()
    sources = uri(project / "common" / "sources.feat")
    client.diagnostics.pop(sources, None)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=e, type=types.FileChangeType.Deleted)]))
    await diagnostics(client, sources, lambda ds: len(ds) > 0)
    want = compiled(project, {}, tmp_path)  # the project as it is on disk now
    assert {w[1] for w in want if w[0] == "common/sources.feat"} == {"E0110", "E0101"}
    await settle(client, lambda: pushed(project, client.diagnostics) == want)
    assert pushed(project, client.diagnostics) == want
    await every_request(client, e, saved)
    entities.write_text(saved, encoding="utf-8")
    client.diagnostics.pop(sources, None)
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=e, type=types.FileChangeType.Created)]))
    await settle(client, lambda: list(client.diagnostics.get(sources, [None])) == [])
    assert list(client.diagnostics.get(sources, [None])) == []
    docs.close(e)
    assert failures(client) == []
    await still_works(client, project)


async def test_a_buffer_that_is_not_a_file(client, project: Path):
    docs = Docs(client)
    u = "untitled:Untitled-1"
    docs.versions[u] = 1
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=u, language_id="astra", version=1, text="entity user { key user_id: int64 }\nfeatures f v1 for usr {}\n")))
    ds = await diagnostics(client, u, lambda ds: len(ds) > 0)
    assert [d.code for d in ds] == ["E0101"]
    await every_request(client, u, "entity user {}\n")
    docs.close(u)
    assert failures(client) == []
    await still_works(client, project)


async def test_the_server_asks_to_hear_of_files_changed_on_disk(client, project: Path):
    await still_works(client, project)  # initialized and answering: the registration is done
    [watch] = [r for r in client.registrations if r.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES]
    globs = {w["globPattern"] for w in watch.register_options["watchers"]}  # not structured by the client
    assert globs == {"**/*.feat", "**/astra.lock"}
