"""Offsets <-> protocol positions: a round trip for any text, and columns counted in the units of
the negotiated encoding (UTF-16 by default: an emoji is two units)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types

from astra.lsp.positions import UTF8, UTF16, UTF32, Lines

TEXT = st.text(alphabet=st.sampled_from(["a", "é", "🎉", "\U0001d538", "\n", " ", "#", '"', "\r"]), max_size=60)


@given(TEXT, st.sampled_from([UTF16, UTF8, UTF32]))
def test_every_offset_survives_a_round_trip(text: str, encoding: str):
    lines = Lines(text, encoding)
    for i in range(len(text) + 1):
        assert lines.offset(lines.position(i)) == i


@given(TEXT)
def test_utf16_columns_count_code_units(text: str):
    lines = Lines(text)
    for i in range(len(text) + 1):
        start = text.rfind("\n", 0, i) + 1
        expected = len(text[start:i].encode("utf-16-le")) // 2
        assert lines.position(i) == types.Position(line=text.count("\n", 0, i), character=expected)


def test_examples():
    lines = Lines('x = "🎉é" + y\n# 🎉\n')
    assert lines.position(9) == types.Position(line=0, character=10)  # `+`: the emoji is two units
    assert lines.offset(types.Position(line=0, character=10)) == 9
    assert Lines('"🎉" y', UTF8).position(4) == types.Position(line=0, character=7)
    assert Lines('"🎉" y', UTF32).position(4) == types.Position(line=0, character=4)
    # past the end of a line: its end; past the last line: the end of the text
    assert lines.offset(types.Position(line=0, character=999)) == 12
    assert lines.offset(types.Position(line=99, character=0)) == len(lines.text)
