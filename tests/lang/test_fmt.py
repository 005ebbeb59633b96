"""The formatter: canonical layout, minimal parentheses, comments kept, and the round trip
`parse(format(m)) == m` with `format` idempotent, for random trees of every shape."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import SAMPLE, modules

from astra.lang import ast
from astra.lang.fmt import expr, format_module, format_text
from astra.lang.parser import parse_text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules)
def test_format_round_trips_random_modules(module):
    text = format_module(module)
    again = parse_text(text, module.path)
    assert again == module
    assert format_module(again) == text


def test_sample_round_trips_and_is_idempotent():
    text = format_text(SAMPLE, "sample.feat")
    assert parse_text(text, "sample.feat") == parse_text(SAMPLE, "sample.feat")
    assert format_text(text, "sample.feat") == text
    assert text.count("#") == SAMPLE.count("#") - SAMPLE.count('"#')


def test_canonical_layout():
    messy = (
        'features  s v1 for user{x:int64=count(t,168h)  description "g"\n'
        'y : float64? = (a+b)*c default -1.5 owner "o" tags["a","b"]}'
        ' entity user{key id:int64 description "u"} events t for user ( id = uid ) , m'
        '{ columns{uid:int64 ts:timestamp} time ts max_staleness 120m path "t.parquet"} request r{} '
        'import "a.feat" import "b/"'
    )
    assert format_text(messy) == '''\
features s v1 for user {
    owner "o"
    tags ["a", "b"]

    x: int64 = count(t, 7d) description "g"
    y: float64? = (a + b) * c default -1.5
}

entity user {
    description "u"

    key id: int64
}

events t for user(id = uid), m {
    path "t.parquet"
    time ts
    max_staleness 2h
    columns {
        uid: int64
        ts: timestamp
    }
}

request r {}

import "a.feat"
import "b/"
'''


def test_comments_survive_formatting():
    text = '''\
# file header

# about users
entity user {  # trailing the header
    # before the key
    key user_id: int64  # trailing a key
    owner "me"  # trailing metadata
    # at the end of the body
}
features g v1 for user {
    # before a feature
    a: int64 = count(t,
        7d)  # trailing a feature spread over lines
    b: int64 = a + # inside an expression
        1
}  # after the closing brace
request r { }
# the end
'''
    out = format_text(text)
    assert out == '''\
# file header
# about users
entity user {  # trailing the header
    owner "me"  # trailing metadata

    # before the key
    key user_id: int64  # trailing a key
    # at the end of the body
}

features g v1 for user {
    # before a feature
    a: int64 = count(t, 7d)  # trailing a feature spread over lines
    # inside an expression
    b: int64 = a + 1
}  # after the closing brace

request r {}

# the end
'''
    assert format_text(out) == out
    assert out.count("#") == text.count("#")


def test_comment_in_an_empty_body_keeps_it_open():
    out = format_text("request r {\n  # todo\n}\n")
    assert out == "request r {\n    # todo\n}\n"
    assert format_text(out) == out


@pytest.mark.parametrize(("source", "canonical"), [
    ("(a + b) + c", "a + b + c"),
    ("a + (b + c)", "a + (b + c)"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a ?? b) ?? c", "(a ?? b) ?? c"),
    ("a ?? (b ?? c)", "a ?? b ?? c"),
    ("(a < b) == c", "(a < b) == c"),
    ("not (a == b)", "not a == b"),
    ("(not a) == b", "(not a) == b"),
    ("-(a as float32)", "-a as float32"),
    ("(-a) as float32", "(-a) as float32"),
    ("(a + b) as float32", "(a + b) as float32"),
    ("- -a", "--a"),
    ("-(not a)", "-(not a)"),
    ("(if a then b else c) + 1", "(if a then b else c) + 1"),
    ("if a then b else (c ?? d)", "if a then b else c ?? d"),
    ("f((a), [(b)], g(x where (y)))", "f(a, [b], g(x where y))"),
    ("a * (b % c)", "a * (b % c)"),
    ("(a or b) and c", "(a or b) and c"),
])
def test_minimal_parentheses(source, canonical):
    tree = parse_text(f"features g v1 for u {{ x: int64 = {source} }}").decls[0].features[0].expr
    assert expr(tree) == canonical


@pytest.mark.parametrize(("micros", "text"), [
    (7 * 86_400_000_000, "7d"), (14 * 86_400_000_000, "14d"), (3_600_000_000 * 25, "25h"),
    (90 * 60_000_000, "90m"), (120 * 60_000_000, "2h"), (61_000_000, "61s"), (0, "0s"),
])
def test_durations_print_in_the_largest_exact_unit(micros, text):
    assert expr(ast.Literal(kind="duration", value=micros)) == text


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "tab\tnew\nline\r", "#hash", "ünï😀", ""])
def test_strings_are_reescaped(value):
    lit = ast.Literal(kind="string", value=value)
    module = ast.Module(path="s.feat", decls=(ast.Import(path=value),))
    assert parse_text(format_module(module), "s.feat") == module
    assert expr(lit).startswith('"')


@pytest.mark.parametrize("value", [0.1, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 123456789.123])
def test_floats_reparse_exactly(value):
    tree = parse_text(f"features g v1 for u {{ x: float64 = {expr(ast.Literal(kind='float', value=value))} }}")
    assert tree.decls[0].features[0].expr.value == value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.just(SAMPLE), modules.map(format_module)), st.data())
def test_random_comments_survive_and_settle(text, data):
    lines = text.split("\n")
    for n in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            lines[i] += f"  # c{n}"
        else:
            lines.insert(i, f"# c{n}")
    commented = "\n".join(lines)
    out = format_text(commented)
    assert parse_text(out) == parse_text(text)
    assert sorted(c.text for c in parse_text(out).comments) == sorted(c.text for c in parse_text(commented).comments)
    assert format_text(out) == out
