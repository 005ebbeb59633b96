"""The `.feat` language: parser (text -> AST), formatter (AST -> text), and the passes over the AST.

`parse`, `parse_text`, `format_module` and `format_text` are re-exported lazily, so importing
`astra.lang.ast` does not load the parser (and Lark).
"""

from __future__ import annotations

__all__ = ["format_module", "format_text", "parse", "parse_text"]


def __getattr__(name: str):
    if name in ("parse", "parse_text"):
        from astra.lang import parser

        return getattr(parser, name)
    if name in ("format_module", "format_text"):
        from astra.lang import fmt

        return getattr(fmt, name)
    raise AttributeError(name)
