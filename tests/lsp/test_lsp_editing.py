"""Completion, document symbols, formatting and quick fixes, on buffers of the example project."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_expected import compiled
from lsp_session import Docs, diagnostics, position, settle, tdi, utf16
from lsprotocol import types

from astra.compiler import compile_project
from astra.lang.fmt import format_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCRATCH = '''import "common/"

features scratch v1 for user {
    a: int64 = count(transactions, 7d)
}
'''


def offset(text: str, pos: types.Position) -> int:
    """The character offset of a protocol position (UTF-16 columns)."""
    start = sum(len(line) for line in text.splitlines(keepends=True)[:pos.line])
    line = text[start:]
    i = units = 0
    while units < pos.character:
        units += utf16(line[i])
        i += 1
    return start + i


def apply(text: str, edits: list[types.TextEdit]) -> str:
    spans = sorted(((offset(text, e.range.start), offset(text, e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


@pytest.fixture(scope="module")
def scratch(project: Path) -> Path:
    path = project / "scratch.feat"
    path.write_text(SCRATCH, encoding="utf-8")
    return path


async def complete(client, path: Path, text: str, needle: str, into: int) -> dict[str, types.CompletionItem]:
    docs = Docs(client)
    u = docs.open(path, text)
    await diagnostics(client, u)
    found = await client.text_document_completion_async(types.CompletionParams(
        text_document=tdi(u), position=position(text, needle, into=into)))
    docs.close(u)
    return {i.label: i for i in found.items}


def with_line(line: str) -> str:
    return SCRATCH.replace("}\n", f"    {line}\n}}\n")


async def test_columns_after_a_source_and_a_dot_after_an_emoji(client, scratch, project):
    columns = {c for c, _ in compile_project(project, lock="ignore").plan.source("transactions").columns}
    text = with_line('c: string? = "🎉🎉" + last(transactions.)')
    got = await complete(client, scratch, text, "transactions.)", into=len("transactions."))
    assert set(got) == columns
    assert got["amount"].detail == "float64?"


async def test_columns_inside_where(client, scratch):
    text = with_line("c: int64 = count(transactions where am")
    got = await complete(client, scratch, text, "where am", into=len("where am"))
    assert "amount" in got and "category" in got


async def test_names_functions_and_operators_in_an_expression(client, scratch):
    text = with_line("d: float64 = ")
    got = await complete(client, scratch, text, "d: float64 = ", into=len("d: float64 = "))
    assert {"a", "transactions", "profiles", "checkout", "user_spend@v1", "user_spend@v2"} <= set(got)
    assert got["mean"].detail == "mean(source.column [where condition][, window])"
    assert got["count"].detail.startswith("count(source[.column]")
    assert got["clip"].detail == "clip(x, lo, hi)"
    assert got["round"].detail.startswith("round(x, n")
    assert "null when there are none" in got["mean"].documentation.value
    assert {"and", "or", "not", "if"} <= set(got)


async def test_features_of_a_group_version_and_its_versions(client, scratch, project):
    plan = compile_project(project, lock="ignore").plan
    text = with_line("e: int64 = user_spend@v1.")
    got = await complete(client, scratch, text, "@v1.", into=4)
    assert set(got) == {f.name for f in plan.features if f.group == "user_spend" and f.version == 1}
    text = with_line("e: int64 = user_spend@")
    got = await complete(client, scratch, text, "user_spend@", into=len("user_spend@"))
    assert set(got) == {"v1", "v2"}


async def test_entities_after_for_and_selections_in_a_service(client, scratch):
    text = SCRATCH + "features other v1 for \n"
    got = await complete(client, scratch, text, "v1 for ", into=len("v1 for "))
    assert set(got) == {"user", "merchant", "user_merchant", "product"}
    text = SCRATCH + "service s v1 {\n    \n}\n"
    got = await complete(client, scratch, text, "{\n    \n", into=6)
    assert {"user_spend@v1", "merchant_activity@v1", "request"} <= set(got)
    text = SCRATCH + "service s v1 {\n    request \n}\n"
    got = await complete(client, scratch, text, "request \n", into=8)
    assert set(got) == {"checkout", "device"}


async def test_document_symbols_are_hierarchical(client, project):
    spend = project / "spend.feat"
    u = Docs(client).open(spend)
    await diagnostics(client, u)
    found = await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=tdi(u)))
    assert [s.name for s in found] == ["common/", "user_spend v1", "user_spend v2"]
    plan = compile_project(project, lock="ignore").plan
    v1 = found[1]
    assert [c.name for c in v1.children] == [f.split(".")[-1] for f in plan.groups[
        [g.id for g in plan.groups].index("user_spend@v1")].features]
    text = spend.read_text(encoding="utf-8")
    assert v1.selection_range.start == position(text, "user_spend v1")
    assert v1.children[0].detail == "int64"


async def test_formatting_through_astra_fmt(client, scratch):
    docs = Docs(client)
    messy = ('import "common/"\n# 🎉 émoji comment\n'
             'features   scratch v1 for user {a: int64 = count(transactions,7d)  # 🙂\n}  # 🎉 end')
    u = docs.open(scratch, messy)
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=tdi(u), options=types.FormattingOptions(tab_size=4, insert_spaces=True)))
    assert apply(messy, edits) == format_text(messy)
    [edit] = edits
    last = messy.splitlines()[-1]
    assert edit.range.end == types.Position(line=messy.count("\n"), character=utf16(last))
    tidy = format_text(messy)
    docs.change(u, tidy)
    assert not await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=tdi(u), options=types.FormattingOptions(tab_size=4, insert_spaces=True)))
    client.messages.clear()
    docs.change(u, tidy.replace("= count", "count"))
    assert not await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=tdi(u), options=types.FormattingOptions(tab_size=4, insert_spaces=True)))
    assert any("does not parse" in m.message for m in client.messages)
    docs.close(u)


@pytest.mark.parametrize(("line", "code", "title"), [
    ("b: float64 = sum(transactions.amout, 7d)", "E0103", "Change to `amount`"),
    ("b: float64 = mean(transactions.amount, 7d)", "E0205", "Declare it `float64?`"),
    ("b: int64 = count(transactoins, 7d)", "E0102", "Change to `transactions`"),
])
async def test_a_quick_fix_applied_removes_the_error(client, scratch, project, tmp_path, line, code, title):
    docs = Docs(client)
    text = with_line("# 🎉 before\n    " + line + "  # 🙂 after")
    u = docs.open(scratch, text)
    ds = await diagnostics(client, u, lambda ds: any(d.code == code for d in ds))
    [d] = [d for d in ds if d.code == code]
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=tdi(u), range=d.range, context=types.CodeActionContext(diagnostics=[d])))
    [action] = actions
    assert action.kind == types.CodeActionKind.QuickFix and action.title == title
    fixed = apply(text, action.edit.changes[u])
    assert code not in {w[1] for w in compiled(project, {"scratch.feat": fixed}, tmp_path, lock="ignore")}
    docs.change(u, fixed)
    await settle(client, lambda: not any(x.code == code for x in client.diagnostics.get(u, [d])))
    assert not any(x.code == code for x in client.diagnostics.get(u, [d]))
    # no quick fix where there is nothing to fix
    assert not await client.text_document_code_action_async(types.CodeActionParams(
        text_document=tdi(u), range=types.Range(start=types.Position(line=0, character=0),
                                                end=types.Position(line=0, character=3)),
        context=types.CodeActionContext(diagnostics=[])))
    docs.change(u, SCRATCH)
    docs.close(u)


async def test_signature_help_names_the_argument_being_typed(client, scratch):
    docs = Docs(client)
    text = with_line('c: float64 = clip(a, mean(transactions.amount, 7d), ')
    u = docs.open(scratch, text)
    await diagnostics(client, u)
    at = position(text, "7d), ", into=len("7d), "))
    found = await client.text_document_signature_help_async(
        types.SignatureHelpParams(text_document=tdi(u), position=at))
    [sig] = found.signatures
    assert sig.label == "clip(x, lo, hi)" and found.active_parameter == 2
    assert [p.label for p in sig.parameters] == ["x", "lo", "hi"]
    at = position(text, "amount, ", into=len("amount, "))
    found = await client.text_document_signature_help_async(
        types.SignatureHelpParams(text_document=tdi(u), position=at))
    assert found.signatures[0].label.startswith("mean(source.column") and found.active_parameter == 1
    assert "null when there are none" in found.signatures[0].documentation.value
    outside = await client.text_document_signature_help_async(types.SignatureHelpParams(
        text_document=tdi(u), position=types.Position(line=0, character=3)))
    assert outside is None
    docs.change(u, SCRATCH)
    docs.close(u)
