"""Every documented operator is registered and carries all of its implementations, so the engines
cannot drift apart unnoticed (and an empty or shrunken registry fails here instead of passing)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from astra.ops import doc_tables
from astra.ops import functions as _functions  # noqa: F401  (registers the built-in functions)
from astra.ops.aggregations import AGGREGATIONS, Aggregation
from astra.ops.registry import SCALARS

LANGUAGE_DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"

# The operators docs/language.md promises, by their registry names.
EXPECTED_SCALARS = {
    "+", "-", "*", "/", "%", "neg", "==", "!=", "<", "<=", ">", ">=", "in", "and", "or", "not", "??", "if",
    "is_null", "cast", "abs", "floor", "ceil", "round", "log", "sqrt", "exp", "clip", "lower", "upper", "length",
    "list_length", "contains", "starts_with", "ends_with", "seconds", "minutes", "hours", "days", "hour_of_day",
    "day_of_week", "assignment", "log1p", "expm1", "bucketize", "ordinal", "one_hot",
    "dot", "norm", "euclidean", "manhattan", "cosine", "normalize", "vector+", "vector-", "vector*",
    "number*vector",
    "fitted.scale", "fitted.bins", "fitted.vocab", "fitted.impute", "fitted.one_hot",  # fitted transforms, bound
    # (astra.ops.transforms)
    "fitted.target", "fitted.target_oof",  # target encoding, bound (astra.ops.target_encode)
}
EXPECTED_AGGREGATIONS = {"count", "sum", "mean", "min", "max", "first", "last", "count_distinct", "variance",
                         "stddev", "last_k", "first_k", "top_k", "bottom_k", "median", "percentile", "skew",
                         "kurtosis", "exp_decay_sum", "approx_count_distinct", "approx_percentile", "mode",
                         "histogram"}


def _section(title: str) -> str:
    text = LANGUAGE_DOC.read_text()
    start = text.index(title)
    return text[start:text.index("\n#", start + len(title))]


def test_the_documented_operators_are_exactly_the_registered_ones() -> None:
    assert set(SCALARS) == EXPECTED_SCALARS
    assert set(AGGREGATIONS) == EXPECTED_AGGREGATIONS


def test_every_function_and_aggregation_of_the_language_reference_is_registered() -> None:
    functions = set(re.findall(r"`([a-z_][a-z0-9_]*)\(", _section("### Functions"))) - {"now"}  # now() is an IR node
    assert functions and functions <= set(SCALARS), functions - set(SCALARS)
    table = _section("<!-- aggregations-table -->")
    documented = re.findall(r"^\| `(\w+)\(", table, re.M)
    assert sorted(documented) == sorted(AGGREGATIONS)


def test_every_scalar_op_has_a_type_rule_a_reference_and_both_lowerings() -> None:
    assert SCALARS
    for name, op in SCALARS.items():
        for part in ("infer", "reference", "polars", "numpy"):
            assert callable(getattr(op, part)), f"{name} lacks {part}"
        assert op.doc, f"{name} lacks a doc line"
        assert op.null_policy in ("strict", "custom"), name
        assert 1 <= op.arity[0] <= op.arity[1] <= 3, name


def _overrides(cls: type, part: str) -> bool:
    impl = inspect.getattr_static(cls, part, None)
    return impl is not None and impl is not inspect.getattr_static(Aggregation, part, None)


def test_every_aggregation_overrides_all_of_its_parts() -> None:
    assert AGGREGATIONS
    for name, agg in AGGREGATIONS.items():
        cls = type(agg)
        for part in ("infer", "reference", "online"):
            assert _overrides(cls, part), f"aggregation {name} lacks its own {part}"
        # offline: one window at a time, or all windows of a column at once
        assert _overrides(cls, "offline_window") or _overrides(cls, "offline"), f"{name} lacks an offline lowering"
        assert agg.doc and agg.name == name


def test_every_callable_function_is_in_the_functions_table() -> None:
    """The hand-written Functions table (its rows group functions and carry prose the registry's
    one-line docs do not) lists exactly the names the checker lets a user call."""
    from astra.lang.check import FUNCTIONS

    documented = set(re.findall(r"`([a-z_][a-z0-9_]*)\(", _section("### Functions")))  # log1p, expm1
    assert documented == set(FUNCTIONS)


def test_the_aggregation_table_of_the_language_reference_is_generated_from_the_registry() -> None:
    text = LANGUAGE_DOC.read_text()
    assert doc_tables.render(text) == text, f"docs/language.md is stale: run `{doc_tables.COMMAND_TO_RUN}`"


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in doc_tables.aggregation_table().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[re.match(r"`(\w+)\(", cells[0]).group(1)] = cells
    return rows


def test_the_generated_rows_state_the_documented_semantics() -> None:
    """Cells the generator derives by asking the registry, checked against docs/semantics.md."""
    rows = _rows()
    assert list(rows) == list(AGGREGATIONS)
    sig, inp, result, empty, nulls, lifetime, _ = rows["count"]
    assert sig == "`count(source[.col][, window])`" and inp == "rows, or any column"
    assert (result, empty) == ("`int64`", "`0`")
    assert "counts every row, nulls included" in nulls and lifetime == "folds evicted rows"
    assert rows["sum"][2] == "`int64` for integers; `float64` for floats" and rows["sum"][3] == "`0`"
    assert rows["variance"][2:4] == ["`float64?`", "null (also with fewer than 2 values)"]
    assert rows["kurtosis"][3] == "null (also with fewer than 4 values)"
    assert rows["last_k"][0] == "`last_k(source.col, k[, window])`" and rows["last_k"][2:4] == ["`list<T>`", "`[]`"]
    assert rows["exp_decay_sum"][0] == "`exp_decay_sum(source.col, half_life[, window])`"
    assert rows["max"][2] == "`T?`" and "floats" not in rows["count_distinct"][1]  # floats have no exact identity
    # min/max of booleans keep their rows; of strings they fold (a running extreme per entity)
    assert rows["min"][5].startswith("folds evicted rows of ") and "booleans" not in rows["min"][5]
    assert rows["first_k"][5] == "keeps every row"


def test_doc_tables_check_fails_on_a_stale_table_and_write_repairs_it(tmp_path, monkeypatch, capsys) -> None:
    doc = tmp_path / "language.md"
    doc.write_text(f"# title\n\n{doc_tables.BEGIN}\n| old | table |\n{doc_tables.END}\n\n## after\n")
    monkeypatch.setattr(doc_tables, "DOC", doc)
    assert doc_tables.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert doc_tables.main(["--write"]) == 0
    text = doc.read_text()
    assert "| old | table |" not in text and text.startswith("# title\n") and text.endswith("\n\n## after\n")
    assert doc_tables.main(["--check"]) == 0
    assert doc_tables.main([]) == 2


def test_doc_tables_names_a_missing_marker_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    doc = tmp_path / "language.md"
    doc.write_text(f"{doc_tables.BEGIN}\n| a table without its end marker |\n")
    monkeypatch.setattr(doc_tables, "DOC", doc)
    assert doc_tables.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: language.md: no line") and err.count("\n") == 1


SOURCE = """entity user { key user_id: int64 }
events transactions for user {
    path "t.parquet"
    time ts
    columns { user_id: int64  amount: float64?  qty: int32  category: string }
}
features f v1 for user {
    bad: float64? = AGG
}
"""


def _help_of(tmp_path, call: str) -> list[str]:
    from astra.compiler import compile_project

    (tmp_path / "f.feat").write_text(SOURCE.replace("AGG", call))
    result = compile_project(tmp_path, lock="ignore")
    return [(d.code, d.help) for d in result.diagnostics]


def test_an_aggregation_of_numbers_only_names_the_numeric_columns_in_its_help(tmp_path) -> None:
    """The checker asks the type rule which aggregations take numbers only (no list of names)."""
    numeric = "numeric columns of `transactions`: user_id, amount, qty"
    for call in ("sum(transactions.category, 7d)", "percentile(transactions.category, 0.5, 7d)",
                 "exp_decay_sum(transactions.category, 1h, 7d)", "skew(transactions.category)"):
        assert _help_of(tmp_path, call) == [("E0203", numeric)], call
    # an aggregation that also takes strings refuses a float column without that hint
    assert _help_of(tmp_path, "count_distinct(transactions.amount, 7d)") == [("E0203", "")]
