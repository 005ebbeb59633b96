"""Character offsets (what spans hold: Python string indices, i.e. code points) <-> protocol
positions (a 0-based line and a column counted in the negotiated code units).

The protocol counts columns in UTF-16 code units unless client and server agreed otherwise: a
character outside the Basic Multilingual Plane (an emoji) is two units, `é` one.  Every position
the server sends or reads goes through here.
"""

from __future__ import annotations

import bisect

from lsprotocol import types

from astra.source import NO_SPAN, Span

UTF16, UTF8, UTF32 = "utf-16", "utf-8", "utf-32"


def units(text: str, encoding: str = UTF16) -> int:
    """The length of `text` in code units of `encoding`."""
    if encoding == UTF32:
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class Lines:
    """A text's line starts, for converting between offsets and positions in one encoding."""

    def __init__(self, text: str, encoding: str = UTF16):
        self.text = text
        self.encoding = encoding
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def position(self, offset: int) -> types.Position:
        """The position of a character offset (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return types.Position(line=line, character=units(self.text[self.starts[line]:offset], self.encoding))

    def offset(self, position: types.Position) -> int:
        """The character offset of a position; a column past the line's end means its end, a line
        past the last line the end of the text (clients may send either)."""
        if position.line >= len(self.starts):
            return len(self.text)
        start = self.starts[max(0, position.line)]
        end = self.starts[position.line + 1] - 1 if position.line + 1 < len(self.starts) else len(self.text)
        want, seen = max(0, position.character), 0
        for i in range(start, end):
            if seen >= want:
                return i
            seen += units(self.text[i], self.encoding)
        return end

    def range(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position(start), end=self.position(end))

    def span_range(self, span: Span) -> types.Range:
        """A span's range; a span with no place (a project-wide diagnostic) is the file's start."""
        if span is NO_SPAN:
            return self.range(0, 0)
        return self.range(span.start, span.end)

    def whole(self) -> types.Range:
        """The range covering the whole text (for a formatting edit)."""
        return self.range(0, len(self.text))
