"""Keeping what parsed of a file with syntax errors, and naming what was lost.

A syntax error damages one declaration (or one feature of a group); the rest of the file is
still checked. A damaged declaration is dropped rather than checked half-built, and its name is
*uncertain*: errors that only say "unknown `name`" or "`name` has no member `x`" about it are
follow-on errors of the syntax error, and the collector drops them (see `Collector.uncertain`).
"""

from __future__ import annotations

import re

import attrs

from astra.lang import ast
from astra.lang.parser import Parsed
from astra.source import SourceFile

_KEYWORD_HEADER = re.compile(r"\b(?:entity|events|snapshot|request|features|service|experiment|index)\s+([A-Za-z_]\w*)")
# A header whose keyword was itself mangled: `user_spend v1 for user {`, `user {`.
_BARE_HEADER = re.compile(r"\s*([A-Za-z_]\w*)\s+(?:v\d+\s+)?(?:for\b|\{)")


def keep_undamaged(parsed: Parsed, source: SourceFile) -> tuple[ast.Module | None, set[str]]:
    """The module without its damaged declarations (features, for a group), and the uncertain names."""
    damaged = [*parsed.blanked, *((d.span.start, d.span.end) for d in parsed.diagnostics
                                  if d.span.file == source.path)]
    if parsed.module is None:  # nothing parsed: every declaration the file seems to make is lost
        return None, _headers(source.text, [(0, len(source.text))])
    uncertain = _headers(source.text, parsed.blanked)
    kept: list[ast.Decl] = []
    for decl in parsed.module.decls:
        if not _hit(decl.span, damaged):
            kept.append(decl)
            continue
        name = getattr(decl, "name", None)
        if name is not None:
            uncertain.add(name.value)
        if isinstance(decl, ast.Group) and not _hit(decl.name.span.to(decl.entity.span), damaged):
            # the header is sound: keep the group with its undamaged features
            kept.append(attrs.evolve(decl, features=tuple(f for f in decl.features if not _hit(f.span, damaged))))
    return attrs.evolve(parsed.module, decls=tuple(kept)), uncertain


def _hit(span, damaged: list[tuple[int, int]]) -> bool:
    """Does `span` overlap a damaged range? An empty range counts as its one character."""
    return any(span.start < max(end, start + 1) and start < span.end for start, end in damaged)


def _headers(text: str, regions) -> set[str]:
    """Names that declarations in `regions` of `text` appear to declare."""
    names = set()
    for start, end in regions:
        chunk = text[start:end]
        names |= {m.group(1) for m in _KEYWORD_HEADER.finditer(chunk)}
        bare = _BARE_HEADER.match(chunk)
        if bare:
            names.add(bare.group(1))
    return names
