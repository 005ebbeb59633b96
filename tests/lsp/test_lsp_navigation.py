"""Hover, go to definition and find references across the files of the example project, with
positions in UTF-16 code units on lines that hold characters outside the Basic Multilingual Plane."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lsp_session import Docs, diagnostics, position, tdi, uri, utf16
from lsprotocol import types

from astra.compiler import compile_project
from astra.plan.fingerprint import feature_fingerprints

pytestmark = pytest.mark.asyncio(loop_scope="module")

UNICODE = '''import "common/"

# 🎉 notes in émoji and \U0001d538\U0001d539, before the names they sit next to
features emoji_spend v1 for user {
    description "spend 🎉 in é"
    label: string = "🎉🎉" + last(transactions.category) ?? ""   # 🙂 category is a column
    big: int64 = count(transactions where amount > 100.0 and category == "🎉", 7d)
}
'''


@pytest.fixture(scope="module")
def files(project: Path) -> dict[str, Path]:
    (project / "unicode.feat").write_text(UNICODE, encoding="utf-8")
    return {name: project / name for name in ("spend.feat", "services.feat", "unicode.feat", "profile.feat")} | {
        "sources": project / "common" / "sources.feat", "entities": project / "common" / "entities.feat"}


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def span(path: Path, needle: str, *, nth: int = 0, word: str | None = None) -> types.Range:
    """The range of `word` (default: `needle`) at the `nth` occurrence of `needle` in the file."""
    t = text(path)
    into = needle.index(word) if word else 0
    start = position(t, needle, nth=nth, into=into)
    return types.Range(start=start, end=types.Position(line=start.line,
                                                       character=start.character + utf16(word or needle)))


async def hover(client, path: Path, needle: str, *, into: int = 1, nth: int = 0) -> types.Hover:
    u = Docs(client).open(path)
    await diagnostics(client, u)
    return await client.text_document_hover_async(types.HoverParams(
        text_document=tdi(u), position=position(text(path), needle, nth=nth, into=into)))


async def definition(client, path: Path, needle: str, *, into: int = 1, nth: int = 0) -> list[types.Location]:
    u = Docs(client).open(path)
    await diagnostics(client, u)
    found = await client.text_document_definition_async(types.DefinitionParams(
        text_document=tdi(u), position=position(text(path), needle, nth=nth, into=into)))
    return list(found or [])


@pytest.fixture(scope="module")
def plan(project: Path, files):
    return compile_project(project, lock="ignore").plan


async def test_hover_on_a_feature_gives_type_nullability_window_owner_description_fingerprint(client, files, plan):
    h = await hover(client, files["services.feat"], "user_spend@v1.tx_mean_7d", into=16)
    value = h.contents.value
    assert "user_spend@v1.tx_mean_7d: float64?" in value
    assert "nullable" in value and "`mean` of a window with no values is null" in value
    assert "[t - 7d, t)" in value
    assert "risk@example.com" in value and "Card spend over sliding windows" in value
    assert feature_fingerprints(plan)["user_spend@v1.tx_mean_7d"] in value
    assert h.range == span(files["services.feat"], "user_spend@v1.tx_mean_7d", word="tx_mean_7d")


async def test_the_effective_window_covers_the_features_read(client, files):
    value = (await hover(client, files["spend.feat"], "spend_ratio_1d_30d")).contents.value
    assert "[t - 30d, t)" in value, "reads tx_sum_1d and tx_sum_30d: its value depends on 30 days"
    value = (await hover(client, files["spend.feat"], "tx_count_7d")).contents.value
    assert "int64" in value and "never null" in value and "[t - 7d, t)" in value
    # an as-of lookup has no window; a default makes a nullable expression non-null
    value = (await hover(client, files["profile.feat"], "tier: int32 =")).contents.value
    assert "user_profile@v2.tier: int32" in value and "never null" in value and "default `0`" in value
    assert "as of t" in value and "deprecated" in value


async def test_hover_on_entities_sources_columns_requests_groups_and_services(client, files, plan):
    spend, services, unicode = files["spend.feat"], files["services.feat"], files["unicode.feat"]
    value = (await hover(client, spend, "for user", into=5)).contents.value
    assert "entity user (user_id: int64)" in value and "A card holder" in value
    value = (await hover(client, spend, "transactions", into=3)).contents.value
    assert "events transactions for user, merchant, user_merchant" in value and "transactions.parquet" in value
    value = (await hover(client, unicode, "category)", into=2)).contents.value
    assert "(column) transactions.category: string" in value
    value = (await hover(client, services, "checkout.amount", into=2)).contents.value
    assert "request checkout" in value and "amount: float64" in value
    value = (await hover(client, services, "user_spend@v2.*", into=2)).contents.value
    assert "features user_spend v2 for user" in value
    value = (await hover(client, services, "fraud_model v2", into=2)).contents.value
    assert "service fraud_model v2" in value
    assert plan.service("fraud_model", 2).fingerprint in value
    value = (await hover(client, spend, "mean(", into=1)).contents.value
    assert "mean(source.column" in value and "null when there are none" in value


async def test_hover_and_definition_count_utf16_units_after_an_emoji(client, files):
    unicode, sources = files["unicode.feat"], files["sources"]
    h = await hover(client, unicode, "category)", into=3)
    assert h.range == span(unicode, "category)", word="category")
    # a column of the source, defined in another file
    [loc] = await definition(client, unicode, "category)", into=3)
    assert (loc.uri, loc.range) == (uri(sources), span(sources, "category: string", word="category"))
    # a bare name inside `where` is a column of the aggregated source
    [loc] = await definition(client, unicode, "amount >", into=2)
    assert (loc.uri, loc.range) == (uri(sources), span(sources, "amount: float64?", word="amount"))


async def test_definition_across_files(client, files):
    spend, services, sources, entities = files["spend.feat"], files["services.feat"], files["sources"], \
        files["entities"]
    # `name@vN.feature`: the feature of that version, not of the other one
    [loc] = await definition(client, services, "user_spend@v1.tx_sum_1h", into=16)
    assert (loc.uri, loc.range) == (uri(spend), span(spend, "tx_sum_1h:", word="tx_sum_1h"))
    [loc] = await definition(client, services, "user_spend@v2.*", into=3)
    assert (loc.uri, loc.range) == (uri(spend), span(spend, "features user_spend v2", word="user_spend"))
    [loc] = await definition(client, spend, "for user", into=5)
    assert (loc.uri, loc.range) == (uri(entities), span(entities, "entity user ", word="user"))
    [loc] = await definition(client, services, "checkout.amount", into=2)
    assert (loc.uri, loc.range) == (uri(sources), span(sources, "request checkout", word="checkout"))
    [loc] = await definition(client, services, "checkout.amount", into=11)
    assert (loc.uri, loc.range) == (uri(sources), span(sources, "amount: float64\n", word="amount"))
    [loc] = await definition(client, files["profile.feat"], "profiles.country", into=2)
    assert (loc.uri, loc.range) == (uri(sources), span(sources, "snapshot profiles", word="profiles"))
    [loc] = await definition(client, services, "fraud_model v2", into=2)
    assert (loc.uri, loc.range) == (uri(services), span(services, "fraud_model v2", word="fraud_model"))
    assert await definition(client, spend, "count(", into=1) == [], "a built-in function has no source"
    # an import leads to the files it reads
    found = await definition(client, spend, 'import "common/"', into=10)
    assert [loc.uri for loc in found] == [uri(entities), uri(sources)]
    [loc] = await definition(client, sources, 'import "entities.feat"', into=10)
    assert loc.uri == uri(entities)


async def test_references_across_files(client, files):
    spend, services = files["spend.feat"], files["services.feat"]
    u = Docs(client).open(spend)
    await diagnostics(client, u)
    found = await client.text_document_references_async(types.ReferenceParams(
        text_document=tdi(u), position=position(text(spend), "tx_mean_30d:", into=1),
        context=types.ReferenceContext(include_declaration=True)))
    got = {(loc.uri, loc.range.start.line, loc.range.start.character) for loc in found}
    lines = text(services).splitlines()
    uses = {(uri(services), i, utf16(line[:line.index("tx_mean_30d")]))
            for i, line in enumerate(lines) if "user_spend@v1.tx_mean_30d" in line}
    assert len(uses) == 2  # a service selection and a feature of checkout_features
    declared = span(spend, "tx_mean_30d:", word="tx_mean_30d").start
    assert got == uses | {(uri(spend), declared.line, declared.character)}
    without = await client.text_document_references_async(types.ReferenceParams(
        text_document=tdi(u), position=position(text(spend), "tx_mean_30d:", into=1),
        context=types.ReferenceContext(include_declaration=False)))
    assert {(loc.uri, loc.range.start.line, loc.range.start.character) for loc in without} == uses


async def test_references_of_a_column_include_where_filters_in_other_files(client, files):
    sources, unicode = files["sources"], files["unicode.feat"]
    u = Docs(client).open(sources)
    await diagnostics(client, u)
    found = await client.text_document_references_async(types.ReferenceParams(
        text_document=tdi(u), position=position(text(sources), "amount: float64?", into=1),
        context=types.ReferenceContext(include_declaration=True)))
    got = {(loc.uri, loc.range.start.line, loc.range.start.character) for loc in found}
    where = span(unicode, "amount >", word="amount").start
    assert (uri(unicode), where.line, where.character) in got
    declared = span(sources, "amount: float64?", word="amount").start
    assert (uri(sources), declared.line, declared.character) in got
    # in spend.feat every `amount` is this column (`transactions.amount`, or bare inside a `where`)
    assert sum(1 for g in got if g[0] == uri(files["spend.feat"])) == len(
        re.findall(r"\bamount\b", text(files["spend.feat"])))


async def test_workspace_symbols_find_declarations_by_name(client, files):
    spend = files["spend.feat"]
    u = Docs(client).open(spend)
    await diagnostics(client, u)
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="tx_count_7"))
    names = {(s.name, s.location.uri) for s in found}
    scores = uri(spend.parent / "scores.feat")
    assert names == {("user_spend@v1.tx_count_7d", uri(spend)), ("user_spend@v2.tx_count_7d", uri(spend)),
                     ("spend_scaled@v1.tx_count_7d_decile", scores)}
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="FRAUD"))
    assert {s.name for s in found} == {"fraud_model@v1", "fraud_model@v2", "fraud_scores@v1", "fraud_scores@v2",
                                       "spend_risk@v1.last_category_fraud_rate"}
    found = await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="transactions"))
    [s] = found
    assert s.kind == types.SymbolKind.Struct and s.location.uri == uri(files["sources"])
