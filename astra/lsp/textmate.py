"""editors/astra.tmLanguage.json, the editors' highlighting grammar, generated so it cannot drift.

The names it highlights are read, never copied: the language's keywords from the quoted words
of grammar/astra.lark, the types from `astra.lang.types`, the aggregations from
`astra.ops.aggregations.AGGREGATIONS`, and the functions from the checker's `FUNCTIONS` plus the
fitted transforms (`astra.ops.transforms.TRANSFORMS`).  Adding an operator to `astra.ops` adds
it here on the next `--write`; a test fails while the committed file is stale.

    uv run python -m astra.lsp.textmate --write     # rewrite editors/astra.tmLanguage.json
    uv run python -m astra.lsp.textmate --check     # exit 1 when the committed file is not current
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from astra.generated import write_or_check

GRAMMAR_FILE = Path(__file__).resolve().parents[2] / "editors" / "astra.tmLanguage.json"
COMMAND_TO_RUN = "uv run python -m astra.lsp.textmate --write"
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"

# How keywords are grouped for colouring (a word of the grammar in none of these is `keyword.other`).
CONTROL = ("if", "then", "else", "where")
WORD_OPERATORS = ("and", "or", "not", "in", "as")
CONSTANTS = ("true", "false", "null")
DECLARATIONS = ("entity", "events", "snapshot", "request", "features", "service", "experiment", "index")
# calls the checker takes before it looks at FUNCTIONS (astra/lang/check.py `_call`)
SPECIAL_CALLS = ("assignment",)


def grammar_keywords() -> list[str]:
    """The quoted words of grammar/astra.lark's rules and terminals, in order of first use
    (comments left out)."""
    from astra.lang.parser import grammar_path

    text = grammar_path().read_text(encoding="utf-8")
    code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    return list(dict.fromkeys(re.findall(rf'"({IDENT})"', code)))


def type_names() -> list[str]:
    """The scalar type names, then the type constructors."""
    from astra.lang.types import SCALARS

    return [*SCALARS, "list", "vector"]


def aggregation_names() -> list[str]:
    """The registered aggregations, in registration order."""
    from astra.ops.aggregations import AGGREGATIONS

    return list(AGGREGATIONS)


def function_names() -> list[str]:
    """Every name a user can call that is not an aggregation: functions and fitted transforms."""
    from astra.lang.check import FUNCTIONS
    from astra.ops.transforms import TRANSFORMS

    return sorted({*FUNCTIONS, *TRANSFORMS, *SPECIAL_CALLS})


def _words(names) -> str:
    """`\\b(a|b|c)\\b` over identifiers (anything else is refused: the names become a regex)."""
    names = list(names)
    for n in names:
        if not re.fullmatch(IDENT, n):
            raise ValueError(f"not an identifier: {n!r}")
    return r"\b(" + "|".join(names) + r")\b"


def grammar() -> dict:
    """The TextMate grammar as a JSON-ready dict."""
    keywords = grammar_keywords()
    types, special = type_names(), {*CONTROL, *WORD_OPERATORS, *CONSTANTS}
    other = [w for w in keywords if w not in special and w not in types]
    call = r"(?=\s*\()"
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "astra",
        "scopeName": "source.astra",
        "fileTypes": ["feat"],
        "patterns": [{"include": f"#{p}"} for p in ("comment", "string", "declaration", "group-ref", "definition",
                                                     "keyword", "type", "constant", "call", "number",
                                                     "operator")],
        "repository": {
            "comment": {"name": "comment.line.number-sign.astra", "match": "#.*$"},
            "string": {
                "name": "string.quoted.double.astra", "begin": "\"", "end": "\"|$",
                "patterns": [{"name": "constant.character.escape.astra", "match": r"\\[\"\\ntr]"},
                             {"name": "invalid.illegal.escape.astra", "match": r"\\."}],
            },
            "declaration": {
                "comment": "a declaration's header: its keyword, its name and, for groups and services, its version",
                "match": r"\b(" + "|".join(DECLARATIONS) + rf")\s+({IDENT})(?:\s+(v[0-9]+)\b)?",
                "captures": {"1": {"name": "keyword.other.declaration.astra"},
                             "2": {"name": "entity.name.type.astra"},
                             "3": {"name": "constant.other.version.astra"}},
            },
            "group-ref": {
                "comment": "group@vN, in an expression or a service selection",
                "match": rf"\b({IDENT})(@)(v[0-9]+)\b",
                "captures": {"1": {"name": "entity.name.namespace.astra"},
                             "2": {"name": "punctuation.separator.version.astra"},
                             "3": {"name": "constant.other.version.astra"}},
            },
            "definition": {
                "comment": "a feature, field, column or key being declared: `name:` at the start of a line or "
                           "after `key`",
                "match": rf"(?:^|(?<=\bkey)|(?<=[{{}}]))\s*({IDENT})\s*(?=:)",
                "captures": {"1": {"name": "variable.other.definition.astra"}},
            },
            "keyword": {"patterns": [
                {"name": "keyword.control.astra", "match": _words(CONTROL)},
                {"name": "keyword.operator.word.astra", "match": _words(WORD_OPERATORS)},
                {"name": "keyword.other.astra", "match": _words(other)},
            ]},
            "type": {"name": "storage.type.astra", "match": _words(types)},
            "constant": {"name": "constant.language.astra", "match": _words(CONSTANTS)},
            "call": {
                "comment": "the built-in aggregations and functions (generated from astra/ops); any other name "
                           "before ( is still a call",
                "patterns": [
                    {"name": "support.function.aggregation.astra", "match": _words(aggregation_names()) + call},
                    {"name": "support.function.astra", "match": _words(function_names()) + call},
                    {"name": "entity.name.function.astra", "match": rf"\b{IDENT}\b" + call},
                ],
            },
            "number": {"patterns": [
                {"name": "constant.numeric.duration.astra", "match": r"\b[0-9]+(us|ms|[smhdw])\b"},
                {"name": "constant.numeric.float.astra",
                 "match": r"\b([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\b|\b[0-9]+[eE][+-]?[0-9]+\b"},
                {"name": "constant.numeric.integer.astra", "match": r"\b[0-9]+\b"},
            ]},
            "operator": {"patterns": [
                {"name": "keyword.operator.astra", "match": r"\?\?|==|!=|<=|>=|[-+*/%<>=]"},
                {"name": "keyword.operator.optional.astra", "match": r"\?"},
            ]},
        },
    }


def render() -> str:
    """The file's text: the grammar as indented JSON, one trailing newline."""
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(argv, "astra.lsp.textmate", GRAMMAR_FILE, lambda _old: render(), GRAMMAR_FILE.name,
                          COMMAND_TO_RUN)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
