"""Source text and spans: where every node and diagnostic points back to."""

from __future__ import annotations

import bisect
from pathlib import Path

import attrs


@attrs.frozen(kw_only=True)
class SourceFile:
    """One `.feat` file's text, with a line index for offset -> (line, col)."""

    path: str  # as shown in diagnostics
    text: str
    origin: str = attrs.field(default="", eq=False)  # the file's real location, when read from disk
    line_starts: tuple[int, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        starts = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]
        object.__setattr__(self, "line_starts", tuple(starts))

    @classmethod
    def read(cls, path: str | Path, display: str | None = None) -> SourceFile:
        return cls(path=display or str(path), text=Path(path).read_text(encoding="utf-8"),
                   origin=str(Path(path).resolve()))

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return line + 1, offset - self.line_starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        start = self.line_starts[line - 1]
        end = self.line_starts[line] - 1 if line < len(self.line_starts) else len(self.text)
        return self.text[start:end]

    def span(self, start: int, end: int) -> Span:
        line, col = self.line_col(start)
        end_line, end_col = self.line_col(max(end, start))
        return Span(file=self.path, start=start, end=end, line=line, col=col, end_line=end_line, end_col=end_col)


@attrs.frozen(kw_only=True)
class Span:
    """A half-open character range [start, end) in one file, with 1-based line/col of both ends."""

    file: str
    start: int
    end: int
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: Span) -> Span:
        """The span covering self through other (same file)."""
        return attrs.evolve(self, end=other.end, end_line=other.end_line, end_col=other.end_col)


NO_SPAN = Span(file="<builtin>", start=0, end=0, line=0, col=0, end_line=0, end_col=0)


def span_field():
    """A span attribute that never takes part in equality, hashing or fingerprints."""
    return attrs.field(default=NO_SPAN, eq=False, repr=False)
