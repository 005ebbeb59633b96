"""Experiment declarations (docs/language.md, "Experiments"): the one-line and the block form parse
to the same tree, the formatter round-trips them, item words stay usable as names elsewhere, and a
missing item is a located E0012."""

from __future__ import annotations

import pytest

from astra.diagnostics import CompileError
from astra.lang.fmt import format_text
from astra.lang.parser import parse_text

ONE_LINE = ('experiment checkout_test { unit user; layer checkout; salt "s1"; '
            'arms { control 50%, treatment 50% } holdout 5% }\n')
BLOCK = """experiment checkout_test {
    unit user
    layer checkout
    salt "s1"
    arms { control 50%, treatment 50% }
    holdout 5%
}
"""


def test_one_line_and_block_forms_are_the_same_declaration():
    one, block = parse_text(ONE_LINE).decls[0], parse_text(BLOCK).decls[0]
    assert one == block
    assert [(a.name.value, a.percent.value) for a in one.arms] == [("control", 50.0), ("treatment", 50.0)]
    assert one.holdout.value == 5.0 and one.coverage is None and one.slice is None


def test_format_round_trips():
    text = BLOCK.replace("holdout 5%", "coverage 20.5%").replace("layer checkout", "layer checkout 0%-40%")
    formatted = format_text(text)
    assert parse_text(formatted) == parse_text(text)
    assert format_text(formatted) == formatted
    assert format_text(ONE_LINE) == BLOCK


def test_item_words_are_names_outside_an_experiment():
    module = parse_text("entity user { key unit: int64 }\nfeatures f v1 for user { layer: int64 = unit }\n")
    assert module.decls[1].features[0].name.value == "layer"


def test_missing_items_are_reported_at_the_name():
    with pytest.raises(CompileError) as err:
        parse_text("experiment e {\n    unit user\n}\n")
    d = err.value.diagnostics[0]
    assert d.code == "E0012" and "`layer`" in d.message and "`salt`" in d.message and d.span.line == 1


NESTED = BLOCK.replace("    unit user\n", "    unit user\n    within checkout_test.treatment\n").replace(
    "experiment checkout_test", "experiment button_test").replace("layer checkout", "layer button")


def test_within_nests_in_an_arm_and_round_trips():
    (e,) = parse_text(NESTED).decls
    assert (e.within[0].value, e.within[1].value) == ("checkout_test", "treatment")
    assert format_text(NESTED) == NESTED
    one_line = 'experiment button_test { unit user; within checkout_test.treatment; layer button; salt "s1"; ' \
               'arms { control 50%, treatment 50% } holdout 5% }\n'
    assert parse_text(one_line) == parse_text(NESTED)


def test_within_is_a_name_outside_an_experiment():
    module = parse_text("entity user { key within: int64 }\n")
    assert module.decls[0].keys[0].name.value == "within"
