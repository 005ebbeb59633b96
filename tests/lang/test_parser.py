"""The parser: what it builds from text, and that no input makes it fail other than by diagnostics.

Golden files pin every syntax-error code: `diagnostics/parse_<CODE>.feat` with the rendered text in
`parse_<CODE>.txt`. Regenerate with `ASTRA_UPDATE_GOLDEN=1 uv run pytest tests/lang/test_parser.py`
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import SAMPLE, mutated_sources

from astra.diagnostics import CompileError, render_all
from astra.lang import ast, parser
from astra.lang.fmt import format_module
from astra.lang.parser import PARSE_ERRORS, grammar_path, parse, parse_text
from astra.lang.types import FLOAT32, STRING, Type
from astra.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = sorted((ROOT / "tests/lang/diagnostics").glob("parse_*.feat"))
FUZZ = settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))


def errors(text: str) -> list[str]:
    """The codes a text fails with (empty if it parses)."""
    try:
        parse_text(text)
    except CompileError as e:
        return [d.code for d in e.diagnostics]
    return []


def sexpr(e: ast.Expr) -> str:
    """A compact, fully parenthesised rendering that shows the tree's shape."""
    match e:
        case ast.Literal():
            return e.text
        case ast.Ref():
            return e.dotted
        case ast.GroupRef():
            return f"{e.group.value}@v{e.version}.{e.feature.value}"
        case ast.Binary():
            return f"({e.op} {sexpr(e.left)} {sexpr(e.right)})"
        case ast.Unary():
            return f"({e.op} {sexpr(e.operand)})"
        case ast.If():
            return f"(if {sexpr(e.cond)} {sexpr(e.then)} {sexpr(e.else_)})"
        case ast.Cast():
            return f"(as {sexpr(e.expr)} {e.to.type})"
        case ast.Call():
            where = f" where {sexpr(e.where)}" if e.where is not None else ""
            return f"{e.func.value}({' '.join(map(sexpr, e.args))}{where})"
        case ast.ListLit():
            return "[" + " ".join(map(sexpr, e.items)) + "]"
    raise TypeError(e)


def expr_of(text: str) -> ast.Expr:
    module = parse_text(f"features g v1 for u {{ x: int64 = {text} }}")
    return module.decls[0].features[0].expr


# --------------------------------------------------------------------------- what gets built


def test_sample_builds_every_declaration_kind():
    module = parse_text(SAMPLE, "sample.feat")
    kinds = [type(d).__name__ for d in module.decls]
    assert kinds == ["Import", "Import", "Entity", "Entity", "Source", "Source", "Source", "Request", "Group",
                     "Service"]
    imp, _, user, pair, tx, transfers, profiles, checkout, group, service = module.decls
    assert imp.path == "common.feat"
    assert user.meta.description == "A card holder" and [k.name.value for k in user.keys] == ["user_id"]
    assert [k.name.value for k in pair.keys] == ["user_id", "merchant_id"]
    assert tx.kind == "events" and [b.entity.value for b in tx.entities] == ["user", "merchant", "user_merchant"]
    assert tx.path == "transactions.parquet" and tx.time.value == "ts"
    assert tx.columns[2].type.type == Type("float64", optional=True)
    assert tx.max_staleness == ast.Literal(kind="duration", value=3_600_000_000)
    assert tx.meta.owner == "payments@example.com"
    (mapping,) = transfers.entities[0].mapping
    assert (mapping.key.value, mapping.column.value) == ("user_id", "sender_id")
    assert profiles.kind == "snapshot"
    assert [f.type.type for f in checkout.fields] == [Type("float64"), STRING.nullable()]
    assert (group.name.value, group.version, group.entity.value) == ("user_spend", 1, "user")
    assert group.meta == ast.Meta(owner="risk@example.com", tags=("risk", "spend"), deprecated="use v2")
    assert service.requests[0].value == "checkout"
    assert [(s.group.value, s.feature and s.feature.value, s.alias and s.alias.value) for s in service.selections] \
        == [("user_spend", None, None), ("user_profile", "tier", "profile_tier")]
    assert len(module.comments) == 4 and module.comments[0].text == "# one file"


def test_features_of_the_sample():
    group = parse_text(SAMPLE).decls[8]
    shapes = {f.name.value: sexpr(f.expr) for f in group.features}
    assert shapes["big_7d"] == "count(transactions 7d where (> amount 100.0))"
    assert shapes["big_sum"] == 'sum(transactions.amount 30d where (== category "x\\"y"))'
    assert shapes["last_category"] == "last(transactions.category)"
    assert shapes["secs"] == "seconds((- now() last(transactions.ts)))"
    assert shapes["other"] == "(?? user_profile@v1.credit_limit 0.0)"
    assert shapes["is_big"] == "(and (> checkout.amount 1e3) (not (== tx_count_7d 0)))"
    assert shapes["f"] == "(% (as tx_sum_7d float32) 2)"
    assert shapes["ok"] == '(or (in category ["a" "b"]) false)'
    score = next(f for f in group.features if f.name.value == "score")
    assert score.default == ast.Literal(kind="float", value=-1.0) and score.description == "a doc"
    vec = next(f for f in group.features if f.name.value == "v")
    assert vec.type.type == Type.vector(64, FLOAT32, optional=True)
    assert next(f for f in group.features if f.name.value == "recent").type.type == Type.list_of(STRING)


@pytest.mark.parametrize(("text", "shape"), [
    ("a + b * c", "(+ a (* b c))"),
    ("a - b - c", "(- (- a b) c)"),
    ("a / b % c", "(% (/ a b) c)"),
    ("-a * b", "(* (- a) b)"),
    ("-a as float32", "(- (as a float32))"),
    ("a ?? b ?? c", "(?? a (?? b c))"),
    ("a or b ?? c", "(?? (or a b) c)"),
    ("a or b and c", "(or a (and b c))"),
    ("not a and b", "(and (not a) b)"),
    ("not a == b", "(not (== a b))"),
    ("a + 1 < b * 2", "(< (+ a 1) (* b 2))"),
    ("a in [1, 2] or c", "(or (in a [1 2]) c)"),
    ("if a then b else c ?? d", "(if a b (?? c d))"),
    ("if a then if b then c else d else e", "(if a (if b c d) e)"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("--a", "(- (- a))"),
    ("a as list<int64>? ?? b", "(?? (as a list<int64>?) b)"),
    ("a as int64 < b", "(< (as a int64) b)"),
    ("f(x where y > 1 and z, 7d, g@v2.h)", "f(x 7d g@v2.h where (and (> y 1) z))"),
    ("now()", "now()"),
    ("[]", "[]"),
])
def test_precedence_and_associativity(text, shape):
    assert sexpr(expr_of(text)) == shape


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("42", "int", 42),
    ("9223372036854775807", "int", 2**63 - 1),
    ("2.5", "float", 2.5),
    ("1e-3", "float", 0.001),
    (".5", "float", 0.5),
    ("3.", "float", 3.0),
    ("1E+2", "float", 100.0),
    ('"a\\"b\\\\c\\nd\\te"', "string", 'a"b\\c\nd\te'),
    ('"#not a comment"', "string", "#not a comment"),
    ("true", "bool", True),
    ("false", "bool", False),
    ("null", "null", None),
    ("30s", "duration", 30_000_000),
    ("5m", "duration", 300_000_000),
    ("1h", "duration", 3_600_000_000),
    ("7d", "duration", 7 * 86_400_000_000),
    ("2w", "duration", 14 * 86_400_000_000),
])
def test_literals(text, kind, value):
    lit = expr_of(text)
    assert (lit.kind, lit.value, lit.text) == (kind, value, text)


def test_spans_point_at_the_source():
    text = "features g v1 for u {\n    n: int64 = count(t where a > 1, 7d) default 0  # c\n}\n"
    module = parse_text(text, "s.feat")
    group = module.decls[0]
    feature = group.features[0]
    assert text[feature.span.start:feature.span.end] == "n: int64 = count(t where a > 1, 7d) default 0"
    assert (feature.span.line, feature.span.col, feature.span.file) == (2, 5, "s.feat")
    assert text[feature.expr.span.start:feature.expr.span.end] == "count(t where a > 1, 7d)"
    assert text[feature.expr.where.span.start:feature.expr.where.span.end] == "a > 1"
    assert text[feature.name.span.start:feature.name.span.end] == "n"
    assert text[feature.type.span.start:feature.type.span.end] == "int64"
    assert text[group.span.start:group.span.end] == text.rstrip("\n")
    assert module.comments[0].span.line == 2


def test_layout_is_free():
    one_line = "entity u { key id: int64 } request r { a: float64 b: string? }"
    spread = "entity\nu\n{\nkey\nid\n:\nint64\n}\n\n\nrequest r {\n\ta: float64\r\n\tb: string?\n}"
    assert parse_text(one_line) == parse_text(spread)


def test_group_description_before_features_belongs_to_the_group():
    group = parse_text('features g v1 for u { description "g" x: int64 = 1 description "x" }').decls[0]
    assert (group.meta.description, group.features[0].description) == ("g", "x")


def test_names_that_are_keywords_only_in_types():
    module = parse_text("features list v1 for vector { list: list<int64> = vector + list(v1) }")
    assert sexpr(module.decls[0].features[0].expr) == "(+ vector list(v1))"


def test_empty_and_comment_only_files():
    assert parse_text("").decls == ()
    module = parse_text("# nothing here\n   # at all")
    assert module.decls == () and [c.text for c in module.comments] == ["# nothing here", "# at all"]


def test_grammar_file_is_found():
    assert grammar_path().is_file()


def test_grammar_cache_is_optional(tmp_path, monkeypatch):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_dir))
    grammar = grammar_path().read_text(encoding="utf-8")
    where = parser._cache_file(grammar)
    assert where is False or not where.startswith(str(not_a_dir))
    # Lark carries on when the cache file cannot be written.
    lark.Lark(grammar, parser="lalr", cache=str(not_a_dir / "sub" / "grammar.cache"))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "code"), [
    ("features g v1 for u { x: int64 = 1 < 2 < 3 }", "E0015"),
    ("features g v1 for u { x: int64 = a where b }", "E0016"),
    ("features g v1 for u { x: int64 = a default b }", "E0017"),
    ("features g v1 for u { x: int64 = a default 1 + 2 }", "E0017"),
    ("features g for u { }", "E0018"),
    ("service s v1 { g@1.x }", "E0018"),
    ("features g v1 for u { owner: string = 1 }", "E0011"),
    ("entity for { key id: int64 }", "E0011"),
    ("features g v1 for u { x: int64 = a.time }", "E0011"),
    ("request r { a: list<flaot64> }", "E0005"),
    ("request r { a: vector<float32, 0> }", "E0008"),
    ("request r { a: vector<float32, 99999999999> }", "E0008"),
    ("features g v99999999999 for u { }", "E0008"),
    ("features g v1 for u { x: int64 = 1e999 }", "E0008"),
    ("events e for u { path \"p\" time ts columns { } path \"q\" }", "E0010"),
    ("features g v1 for u { x: int64 = 1 default 1 default 2 }", "E0010"),
    ("events e for u { time ts columns { } }", "E0012"),
    ("entity u { }", "E0012"),
    ("request r { deprecated \"x\" }", "E0013"),
    ("entity u { key id: int64 } 'x'", "E0002"),
    ("request r { a: int64 = 1 }", "E0001"),
    ("request r {", "E0004"),
])
def test_error_codes(text, code):
    assert code in errors(text)


def test_every_bad_declaration_is_reported():
    text = "\n\n".join([
        "entity user { key user_id int64 }",
        "entity merchant { key merchant_id: int64 }",
        "request checkout { amount: float64 = 1 }",
        "features a v1 for user {\n    x: int64 = count(t,, 7d)\n    y: int64 = count(t)\n    z: int64 = )\n}",
        "service s v1 {\n    request checkout\n    a@v1.x as\n}",
        "features b for user { }",
    ])
    with pytest.raises(CompileError) as info:
        parse_text(text, "m.feat")
    diags = info.value.diagnostics
    assert [(d.code, d.span.line) for d in diags] == [
        ("E0007", 1), ("E0001", 5), ("E0001", 8), ("E0001", 10), ("E0001", 16), ("E0018", 18)]


def test_recovery_does_not_invent_missing_items():
    # The broken `time` clause is blanked to recover; that must not also report `time` missing.
    assert errors("events e for u {\n    path \"p\"\n    time ts ts\n    columns { ts: timestamp }\n}") == ["E0001"]


@pytest.mark.parametrize("text", [
    "\x00", "entity\x00u {}", '"', 'request r { a: string = "', "entity u { key id: int64 }\n" * 3 + "}",
    "(" * 100_000, "[" * 5000, "features g v1 for u { x: int64 = " + "-" * 5000 + "1 }",
    "features g v1 for u { x: int64 = " + " + ".join(["a"] * 3000) + " }",
    "features g v1 for u { x: int64 = " + "(" * 3000 + "1" + ")" * 3000 + " }",
    "features g v1 for u { x: int64 = " + "9" * 10_000 + " }",
    "features g v1 for u { x: int64 = " + "9" * 10_000 + "d }",
    "features g v" + "9" * 10_000 + " for u { }",
    "features g v1 for u { x: int64 = 1." + "9" * 10_000 + "e99999 }",
    "\ud800", "entity \u00e9 { }", "\u2028\u2029\ufeff", "é" * 1000, "\r\n\r\n", "#" * 10,
    "}" * 100, "entity " * 100, "request r { a: list<" * 500,
])
def test_nasty_inputs_only_raise_compile_errors(text):
    check_total(text)


def check_total(text: str) -> None:
    """Parse either succeeds (and formats back to the same tree) or fails with renderable diagnostics."""
    source = SourceFile(path="fuzz.feat", text=text)
    try:
        module = parse(source)
    except CompileError as e:
        assert e.diagnostics
        for d in e.diagnostics:
            assert d.code in PARSE_ERRORS
            assert d.span.file == "fuzz.feat"
            assert 0 <= d.span.start <= d.span.end <= len(text)
        render_all(e.diagnostics, {"fuzz.feat": source})
        return
    assert parse_text(format_module(module), "fuzz.feat") == module


@FUZZ
@given(mutated_sources())
def test_character_mutations_fail_cleanly(text):
    check_total(text)


@FUZZ
@given(mutated_sources(token_level=True))
def test_token_mutations_fail_cleanly(text):
    check_total(text)


# --------------------------------------------------------------------------- golden diagnostics


@pytest.mark.parametrize("case", GOLDEN, ids=[c.stem for c in GOLDEN])
def test_diagnostic_is_pinned(case: Path):
    path = str(case.relative_to(ROOT))
    source = SourceFile(path=path, text=case.read_text(encoding="utf-8"))
    with pytest.raises(CompileError) as info:
        parse(source)
    rendered = render_all(info.value.diagnostics, {path: source}) + "\n"
    code = case.stem.removeprefix("parse_")
    if code in PARSE_ERRORS:
        assert any(d.code == code for d in info.value.diagnostics), rendered
    golden = case.with_suffix(".txt")
    if os.environ.get("ASTRA_UPDATE_GOLDEN"):
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"no golden file for {case.name}; run with ASTRA_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(encoding="utf-8")


def test_every_parse_error_code_has_a_golden_case():
    pinned = {c.stem.removeprefix("parse_") for c in GOLDEN}
    assert set(PARSE_ERRORS) <= pinned, sorted(set(PARSE_ERRORS) - pinned)
