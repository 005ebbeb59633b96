"""Diagnostics as you type: exactly the compiler's, for every file of the project, over unsaved
buffers, cleared once fixed; and for a file outside any project, the file's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsp_expected import compiled, pushed
from lsp_session import Docs, diagnostics, position, settle, uri
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_example_project_opens_clean(client, project: Path, tmp_path: Path):
    u = Docs(client).open(project / "services.feat")
    assert await diagnostics(client, u) == []
    assert compiled(project, {}, tmp_path) == set()


async def test_an_unsaved_edit_is_checked_across_the_project_and_cleared_once_fixed(client, project: Path,
                                                                                     tmp_path: Path):
    docs = Docs(client)
    sources = project / "common" / "sources.feat"
    original = sources.read_text(encoding="utf-8")
    u = docs.open(sources)
    await diagnostics(client, u)
    # rename a column in the buffer only: the files that read it break, though none is open
    broken = original.replace("amount: float64?", "amt: float64?")
    want = compiled(project, {"common/sources.feat": broken}, tmp_path)
    assert {w[0] for w in want} == {"spend.feat", "merchant.feat"}  # the compiler reports it there
    assert {w[1] for w in want} == {"E0103"}
    spend, merchant = uri(project / "spend.feat"), uri(project / "merchant.feat")
    docs.change(u, broken, forget=(spend, merchant))
    await settle(client, lambda: pushed(project, client.diagnostics) == want)
    assert pushed(project, client.diagnostics) == want
    assert sources.read_text(encoding="utf-8") == original, "the disk is never written"
    docs.change(u, original, forget=(spend, merchant))
    assert await diagnostics(client, spend) == []
    assert await diagnostics(client, merchant) == []
    # closed without saving: the disk is the truth again
    docs.change(u, broken, forget=(spend,))
    assert await diagnostics(client, spend, lambda ds: len(ds) > 0)
    client.diagnostics.pop(spend, None)
    docs.close(u)
    assert await diagnostics(client, spend) == []


async def test_a_new_version_is_refused_by_the_lock_as_by_astra_compile(client, project: Path, tmp_path: Path):
    docs = Docs(client)
    spend = project / "spend.feat"
    lock = (project / "astra.lock").read_bytes()
    original = spend.read_text(encoding="utf-8")
    text = original + "\nfeatures user_spend v3 for user {\n    n: int64 = count(transactions, 1d)\n}\n"
    want = compiled(project, {"spend.feat": text}, tmp_path)
    assert [w[1] for w in want] == ["E0602"]
    u = docs.open(spend, text)
    await settle(client, lambda: pushed(project, client.diagnostics) == want)
    assert pushed(project, client.diagnostics) == want
    assert (project / "astra.lock").read_bytes() == lock, "the lock is compared, never written"
    docs.change(u, original)
    assert await diagnostics(client, u) == []
    docs.close(u)


async def test_a_warning_is_a_warning(client, project: Path, tmp_path: Path):
    docs = Docs(client)
    services = project / "services.feat"
    original = services.read_text(encoding="utf-8")
    text = original + "\nservice legacy v1 {\n    user_profile@v2.country\n}\n"
    want = compiled(project, {"services.feat": text}, tmp_path)
    assert {(w[1], w[2]) for w in want} == {("W0503", types.DiagnosticSeverity.Warning)}
    u = docs.open(services, text)
    await settle(client, lambda: pushed(project, client.diagnostics) == want)
    assert pushed(project, client.diagnostics) == want
    docs.change(u, original)
    assert await diagnostics(client, u) == []
    docs.close(u)


LONELY = '''# Ünïcödé comments: café, 🎉 and \U0001d538 (outside the BMP)
entity user { key user_id: int64 }  # 👤
events tx for user {
    path "tx_🎉.parquet"   # 🎉 in a path
    time ts
    columns { user_id: int64  label: string }
}
features f v1 for user {
    greeting: string = "héllo 🎉" + lable     # 🙂 a typo after an emoji
    n: int64 = "🎉🎉"
}
features g v1 for user {
    m: float64 = \U0001d538  # not a name
}
'''


async def test_a_file_outside_any_project_is_checked_alone_in_utf16_positions(client, tmp_path_factory):
    alone = tmp_path_factory.mktemp("alone")
    path = alone / "lonely.feat"
    path.write_text(LONELY, encoding="utf-8")
    want = compiled(alone, {}, tmp_path_factory.mktemp("work"), lock="ignore", single="lonely.feat")
    assert {w[1] for w in want} >= {"E0002", "E0104", "E0204"}
    docs = Docs(client)
    u = docs.open(path)
    await settle(client, lambda: pushed(alone, client.diagnostics) == want)
    assert pushed(alone, client.diagnostics) == want
    # the columns count UTF-16 units: `lable` sits after `"héllo 🎉"` (the emoji is two units)
    typo = next(d for d in client.diagnostics[u] if d.code == "E0104")
    line = LONELY.splitlines()[8]
    assert typo.range.start.character == len(line[:line.index("lable")]) + 1
    assert any("single-file" in m.message for m in client.log_messages)
    docs.change(u, "entity user { key user_id: int64 }  # 🎉 fixed\n")
    assert await diagnostics(client, u) == []
    docs.close(u)


async def test_an_import_of_a_missing_file_is_located(client, tmp_path_factory):
    alone = tmp_path_factory.mktemp("imports")
    path = alone / "main.feat"
    path.write_text('import "nowhere.feat"\n', encoding="utf-8")
    want = compiled(alone, {}, tmp_path_factory.mktemp("work"), lock="ignore", single="main.feat")
    assert [w[1] for w in want] == ["E0110"]
    u = Docs(client).open(path)
    await settle(client, lambda: pushed(alone, client.diagnostics) == want)
    assert pushed(alone, client.diagnostics) == want
    assert (await diagnostics(client, u))[0].range.start == types.Position(line=0, character=0)


async def test_incremental_edits_after_an_emoji(client, tmp_path_factory):
    alone = tmp_path_factory.mktemp("typing")
    path = alone / "typing.feat"
    text = ('entity user { key user_id: int64 }\nfeatures f v1 for user {\n'
            '    b: string = "🎉🎉" + "x"  # 🙂\n}\n')
    path.write_text(text, encoding="utf-8")
    docs = Docs(client)
    u = docs.open(path)
    assert await diagnostics(client, u) == []
    # type over `"x"`, as an editor sends it: a range in UTF-16 units after two emoji
    at = position(text, '"x"')
    rng = types.Range(start=at, end=types.Position(line=at.line, character=at.character + 3))
    docs.edit(u, rng, "1")
    [d] = await diagnostics(client, u)
    assert d.code == "E0201"
    assert d.range.start.line == at.line
    docs.edit(u, types.Range(start=at, end=types.Position(line=at.line, character=at.character + 1)), '"y"')
    assert await diagnostics(client, u) == []


async def test_a_malformed_lock_is_reported_in_it(client, project: Path, tmp_path_factory):
    broken = tmp_path_factory.mktemp("badlock") / "features"
    shutil.copytree(project, broken)
    (broken / "astra.lock").write_text('{"groups": {"user_spend@v1": 3}}\n', encoding="utf-8")
    want = compiled(broken, {}, tmp_path_factory.mktemp("work"))
    assert {(w[0], w[1]) for w in want} == {("astra.lock", "E0110")}
    Docs(client).open(broken / "spend.feat")
    await settle(client, lambda: pushed(broken, client.diagnostics) == want)
    assert pushed(broken, client.diagnostics) == want


async def test_a_saved_file_is_checked_at_once(client, project: Path, tmp_path: Path):
    docs = Docs(client)
    spend = project / "spend.feat"
    original = spend.read_text(encoding="utf-8")
    broken = original.replace("tx_sum_1d / tx_sum_30d", "tx_sum_1d / tx_sum_31d")
    want = compiled(project, {"spend.feat": broken}, tmp_path)
    assert [w[1] for w in want] == ["E0104"]
    u = docs.open(spend)
    await diagnostics(client, u)
    spend.write_text(broken, encoding="utf-8")  # saved by the editor: buffer and disk agree
    docs.change(u, broken)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=u)))
    await settle(client, lambda: pushed(project, client.diagnostics) == want)
    assert pushed(project, client.diagnostics) == want
    spend.write_text(original, encoding="utf-8")
    docs.change(u, original)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=u)))
    assert await diagnostics(client, u) == []
    docs.close(u)
