"""Text to AST: run the Lark LALR parser, turn its errors into diagnostics, recover, then lower.

Syntax errors never escape as Lark exceptions. Each one becomes a `Diagnostic` with a readable
message (token names translated, big expected-sets collapsed into phrases such as "an
expression"), and parsing resumes after blanking the broken feature or declaration, so one run
reports every bad declaration. Common mistakes are classified from the parser state at the error
(what it accepts, what is on its value stack) — the information Lark's `match_examples` compares,
read directly instead of by re-parsing example snippets on every error.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import re
import tempfile
from importlib.resources.abc import Traversable
from pathlib import Path

import attrs
import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from astra.diagnostics import CompileError, Diagnostic, Label
from astra.lang import lower
from astra.lang.ast import Module
from astra.source import SourceFile

PARSE_ERRORS: dict[str, str] = {
    "E0001": "unexpected token: the parser met a token that cannot appear here",
    "E0002": "unexpected character: a character that starts no token of the language",
    "E0003": "unterminated string: a `\"` with no closing `\"` on the same line",
    "E0004": "unexpected end of file: a declaration or expression is left open",
    "E0005": "unknown type name: a type that is not a scalar, `list<T>` or `vector<T, N>`",
    "E0006": "missing `=`: a feature's type must be followed by `= expression`",
    "E0007": "missing type: a name in a field or feature must be followed by `: type`",
    "E0008": "number out of range: an integer, float, duration, version or vector size too large",
    "E0009": "invalid escape: a string escape other than \\\" \\\\ \\n \\t \\r",
    "E0010": "duplicate item: metadata, a source clause or a feature option given twice",
    "E0011": "keyword used as a name: keywords are reserved everywhere",
    "E0012": "missing required item: an entity without `key`, a source without `path`, `time` or `columns`",
    "E0013": "misplaced `deprecated`: only feature groups can be deprecated",
    "E0014": "nesting too deep: an expression nested beyond the compiler's limit",
    "E0015": "chained comparison: comparisons do not associate; combine them with `and`",
    "E0016": "misplaced `where`: a filter may only follow the first argument of an aggregation",
    "E0017": "non-literal default: a feature's `default` must be a literal value",
    "E0018": "missing version: groups, services and `group@vN` references need a version like `v1`",
}

MAX_ERRORS = 20  # syntax errors reported per file before giving up
MAX_NESTING = 100  # parse-tree depth; keeps every recursive pass far from Python's stack limit

DECL_KEYWORDS = ("entity", "events", "snapshot", "request", "features", "service", "experiment", "import",
                 "index")


# --------------------------------------------------------------------------- public API


@attrs.frozen
class Parsed:
    """What parsing one file gave: the module of what parsed (None when nothing did), every
    syntax diagnostic, and the character ranges the recovery had to blank out."""

    module: Module | None
    diagnostics: tuple[Diagnostic, ...]
    blanked: tuple[tuple[int, int], ...]


def parse(source: SourceFile) -> Module:
    """Parse one `.feat` file; raise `CompileError` carrying every syntax diagnostic found."""
    parsed = parse_partial(source)
    if parsed.diagnostics:
        raise CompileError(parsed.diagnostics)
    return parsed.module


def parse_partial(source: SourceFile) -> Parsed:
    """Parse one `.feat` file as far as it goes: the recovered module is returned with the
    diagnostics, so the compiler can keep checking the declarations that parsed."""
    tree, diags, blanked = _parse_recovering(source)
    module = None
    if tree is not None:
        deep = _too_deep(tree, source)
        if deep is not None:
            return Parsed(None, tuple(sorted([*diags, deep], key=lambda d: d.span.start)), tuple(blanked))
        module, lowered = lower.lower_module(tree, source)
        # Blanked-out items would show up as "missing `path`" and the like: not the user's mistake.
        diags += [d for d in lowered if not (blanked and d.code == "E0012")]
    return Parsed(module, tuple(sorted(diags, key=lambda d: d.span.start)), tuple(blanked))


def parse_text(text: str, path: str = "<string>") -> Module:
    """Parse source text directly; `path` is only used in spans and messages."""
    return parse(SourceFile(path=path, text=text))


# --------------------------------------------------------------------------- the Lark parser


def grammar_path() -> Traversable:
    """The grammar file: packaged inside `astra` when installed, else at the repository root."""
    packaged = importlib.resources.files("astra") / "grammar" / "astra.lark"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "grammar" / "astra.lark"


@functools.cache
def _parser() -> lark.Lark:
    grammar = grammar_path().read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=False, cache=_cache_file(grammar))


def _cache_file(grammar: str) -> str | bool:
    """Where Lark may keep the analysed grammar: a per-user directory, or no cache at all.

    Lark unpickles the cache file, so it must live somewhere only this user can write; Lark
    itself ignores a cache file it cannot read or write.
    """
    key = hashlib.sha256((grammar + lark.__version__).encode()).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for folder in (os.path.join(home, "astra"), os.path.join(tempfile.gettempdir(), f"astra-{uid}")):
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            info = os.stat(folder)
        except OSError:
            continue
        if info.st_uid == uid and not info.st_mode & 0o022 and os.access(folder, os.W_OK):
            return os.path.join(folder, f"grammar-{key}.lark-cache")
    return False


# --------------------------------------------------------------------------- recovery


def _parse_recovering(source: SourceFile) -> tuple[lark.Tree | None, list[Diagnostic], list[tuple[int, int]]]:
    """Parse, and after each error blank out the broken item or declaration and parse again.

    Blanking (spaces, newlines kept) preserves every offset, so later diagnostics point into the
    original text. Errors only ever move forward, which bounds the loop. Returns the tree (None
    when recovery gave up), the diagnostics and the blanked ranges.
    """
    text, diags, last, blanked = source.text, [], -1, []
    for _ in range(MAX_ERRORS * 2):
        try:
            return _parser().parse(text), diags, blanked
        except UnexpectedInput as e:
            pos = _error_pos(e, text)
            repeated = pos <= last  # the item-level guess did not help: skip the whole declaration
            keyword, brace = _new_declaration(e)
            # an unclosed body is no broken item: blank the declaration up to the next one
            unclosed = keyword is not None
            # ... unless an earlier error inside that body was blanked with its `}`: a follow-on error
            follow_on = unclosed and any(brace.start_pos < d.span.start < keyword.start_pos for d in diags)
            if not repeated and not follow_on:
                found = _diagnose(e, source, pos)
                if found not in diags:  # one mistake met again from another position
                    diags.append(found)
            region = (None if repeated or unclosed else _item_region(text, e, pos)) or _decl_region(text, e, pos)
            # a region ending before the error only helps when it ends at a declaration keyword
            # the parser took for a name (`_new_declaration`): the next parse starts there
            behind = region is not None and region[1] < pos and not unclosed
            if len(diags) >= MAX_ERRORS or region is None or behind or (repeated and region[1] <= pos):
                break
            last = max(pos, last)
            start, end = region
            blanked.append((start, end))
            text = text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]
    return None, diags, blanked


_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_]\w*|[0-9][\w.]*|\S')
_ITEM_KEYWORDS = {"key", "path", "time", "columns", "max_staleness", "owner", "description", "tags",
                  "deprecated", "request"}
_ENDS_ITEM = re.compile(r'[\w"?>)\]}*{]$')  # the last character of a token that can end an item


def _tokens(text: str, start: int) -> list[tuple[str, int, int, bool]]:
    """(token, offset, brace depth before it, first on its line) from `start`, comments skipped."""
    out, depth = [], 0
    prev_end = text.rfind("\n", 0, start) + 1
    first = not text[prev_end:start].strip()
    for m in _SCAN.finditer(text, start):
        tok, at = m.group(), m.start()
        if tok.startswith("#"):
            continue
        first = first or "\n" in text[prev_end:at]
        out.append((tok, at, depth, first))
        depth += (tok == "{") - (tok == "}")
        prev_end, first = m.end(), False
    return out


def _decl_start(e: UnexpectedInput, pos: int) -> int:
    """Where the declaration being parsed began: the first token still on the parser's stack."""
    for value in _value_stack(e):
        if isinstance(value, lark.Token) and value.start_pos is not None:
            return value.start_pos
    return pos


def _decl_region(text: str, e: UnexpectedInput, pos: int) -> tuple[int, int] | None:
    """From the broken declaration's start to the next declaration keyword that looks top-level."""
    if _is_eof(e):
        return None
    start = _decl_start(e, pos)
    keyword, _ = _new_declaration(e)
    if keyword is not None and start < keyword.start_pos:
        return start, keyword.start_pos  # an unclosed body: the declaration at the error is whole, keep it
    toks = _tokens(text, start)
    for i, (tok, at, depth, _first) in enumerate(toks):
        if at <= pos or tok not in DECL_KEYWORDS:
            continue
        at_margin = at == 0 or text[at - 1] == "\n"
        # `request` also opens a line inside services; only `request name {` starts a declaration.
        looks_decl = tok != "request" or [t[0] for t in toks[i + 2:i + 3]] == ["{"]
        if depth <= 0 or (at_margin and looks_decl):
            return start, at
    return start, len(text)


def _item_region(text: str, e: UnexpectedInput, pos: int) -> tuple[int, int] | None:
    """The broken item (feature, field, clause) inside a declaration body, if it stands alone.

    Items are recognised by layout: the first token of a line, one brace deep, that starts a
    field (`name:`), a clause keyword, a selection (`name@`) or closes the body. The region must
    be brace-balanced and follow a token that can end an item, or blanking it would only move
    the error.
    """
    if _is_eof(e):
        return None
    toks = _tokens(text, _decl_start(e, pos))
    starts = []
    for i, (tok, at, depth, first) in enumerate(toks):
        nxt = toks[i + 1][0] if i + 1 < len(toks) else ""
        is_item = tok in _ITEM_KEYWORDS or (re.match(r"[A-Za-z_]", tok) and nxt in (":", "@"))
        if depth == 1 and first and (is_item or tok == "}"):
            starts.append((i, at))
    before = [(i, at) for i, at in starts if at < pos and i > 0 and _ENDS_ITEM.search(toks[i - 1][0])]
    after = [at for _, at in starts if at >= pos]
    if not before or not after or toks[before[-1][0]][0] == "}":
        return None
    start, end = before[-1][1], after[0]
    inner = [t for t in toks if start <= t[1] < end]
    if sum((t[0] == "{") - (t[0] == "}") for t in inner) != 0:
        return None
    return start, end


# --------------------------------------------------------------------------- error messages

_EXPR_START = {"NAME", "INT", "FLOAT", "STRING", "DURATION", "TRUE", "FALSE", "NULL", "LPAR", "LSQB",
               "MINUS", "NOT", "IF"}
# Binary operators, `as`, and what may follow a name (`.`, `@`, `(`); `??`, `==`, ... are "__ANON_n".
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "AND", "OR", "IN", "AS", "LESSTHAN", "MORETHAN",
              "DOT", "AT", "LPAR"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">=", "in"}
_META = {"OWNER", "DESCRIPTION", "TAGS", "DEPRECATED"}
_CONTEXTS = {"ENTITY", "EVENTS", "SNAPSHOT", "REQUEST", "FEATURES", "SERVICE", "IMPORT", "COLUMNS"}
_WORDS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "DURATION": "a duration like `7d`", "VERSION": "a version like `v1`", "$END": "the end of the file",
}
# What a body holds, by the keyword that opened it; used when the parser wants a NAME there.
_BODY_NAME = {
    "FEATURES": "a feature definition like `name: type = expression`", "REQUEST": "a field like `name: type`",
    "COLUMNS": "a column like `name: type`", "SERVICE": "a selection like `group@v1.feature`",
}
_CHAR_HELP = {
    "'": "strings are written with double quotes: \"...\"",
    "&": "write `and` for logical and", "|": "write `or` for logical or",
    "!": "write `not` for negation", ";": "declarations and features need no `;`",
}


def _value_stack(e: UnexpectedInput) -> list:
    ip = getattr(e, "interactive_parser", None)
    return list(ip.parser_state.value_stack) if ip is not None else []


def _accepts(e: UnexpectedToken) -> set[str]:
    """What the parser could take here. LALR merges lookaheads across contexts, so the state's
    table over-approximates; feeding each candidate to a copy of the parser gives the true set."""
    ip = getattr(e, "interactive_parser", None)
    found = ip.accepts() if ip is not None else e.expected
    return set(found) - {"WS", "COMMENT", "$END"}


def _is_eof(e: UnexpectedInput) -> bool:
    return isinstance(e, UnexpectedToken) and e.token.type == "$END"


def _error_pos(e: UnexpectedInput, text: str) -> int:
    if isinstance(e, UnexpectedCharacters):
        return e.pos_in_stream
    if _is_eof(e):
        return len(text)
    return e.token.start_pos


def _context(stack: list) -> str:
    """The keyword of the innermost declaration or `columns` block being parsed."""
    for value in reversed(stack):
        if isinstance(value, lark.Token) and value.type in _CONTEXTS:
            return value.type
    return ""


def _term(name: str) -> str:
    """A terminal's readable name: `{` for LBRACE, "a name" for NAME."""
    if name in _WORDS:
        return _WORDS[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"`{pattern.value}`" if isinstance(pattern, PatternStr) else name.lower()


def _found(token: lark.Token) -> str:
    """How the unexpected token is named in a message."""
    kind = token.type
    if kind == "$END":
        return "end of file"
    text = token.value if len(token.value) <= 24 else token.value[:21] + "..."
    if kind == "NAME":
        return f"name `{text}`"
    if kind in ("INT", "FLOAT"):
        return f"number `{text}`"
    if kind in ("STRING", "DURATION", "VERSION"):
        return f"{kind.lower()} `{text}`"
    if re.fullmatch(r"[a-z_]+", token.value):
        return f"keyword `{text}`"
    return f"`{text}`"


def _expected(accepts: set[str], context: str) -> str:
    """Collapse an expected-set into a short phrase: "an expression, `,` or `)`"."""
    left, phrases = set(accepts) - {"WS", "COMMENT"}, []
    if {"INT", "FLOAT", "DURATION", "LPAR"} <= left:
        phrases.append("an expression")
        left -= _EXPR_START
    if {"PLUS", "STAR", "AND"} <= left:
        phrases.append("an operator")
        left -= _OPERATORS | {n for n in left if n.startswith("__ANON")}
    if {"LIST", "VECTOR"} <= left:
        phrases.append("a type")
        left -= {"NAME", "LIST", "VECTOR"}
    if {"ENTITY", "FEATURES", "SERVICE"} <= left:
        phrases.append("a declaration (`entity`, `events`, `snapshot`, `request`, `features`, `service`, "
                       "`experiment`, `import`)")
        left -= {"ENTITY", "EVENTS", "SNAPSHOT", "REQUEST", "FEATURES", "SERVICE", "EXPERIMENT", "IMPORT", "INDEX"}
    if "NAME" in left and context in _BODY_NAME and "RBRACE" in left:
        phrases.append(_BODY_NAME[context])
        left.discard("NAME")
    if {"OWNER", "TAGS"} <= left:
        phrases.append("metadata such as `owner`")
        left -= _META
    words = phrases + sorted(_term(n) for n in left)
    if len(words) > 6:
        words = [*words[:5], f"{len(words) - 5} other tokens"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _diagnose(e: UnexpectedInput, source: SourceFile, pos: int) -> Diagnostic:
    """One Lark error as a located, human-worded diagnostic with a stable code."""
    text = source.text
    if isinstance(e, UnexpectedCharacters):
        ch = e.char
        if ch == '"':
            end = text.find("\n", pos)
            return Diagnostic(code="E0003", message="unterminated string",
                              span=source.span(pos, len(text) if end < 0 else end),
                              label="this string has no closing `\"` on its line",
                              help="strings cannot span lines; write `\\n` for a newline")
        shown = f"`{ch}`" if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
        return Diagnostic(code="E0002", message=f"unexpected character {shown}",
                          span=source.span(pos, pos + 1), help=_CHAR_HELP.get(ch, ""))
    if not isinstance(e, UnexpectedToken):  # LALR raises no other kind; stay total regardless
        return Diagnostic(code="E0001", message="syntax error", span=source.span(pos, pos))
    token, stack, accepts = e.token, _value_stack(e), _accepts(e)
    context, prev = _context(stack), (stack[-1] if stack else None)
    if token.type == "$END":
        end = token.end_pos if token.end_pos is not None else len(text.rstrip())
        opened = [v for v in stack if isinstance(v, lark.Token) and v.type == "LBRACE"]
        brace = opened[-1] if opened else None
        notes = (Label(span=source.span(brace.start_pos, brace.end_pos), message="this `{` is not closed"),) \
            if brace else ()
        return Diagnostic(code="E0004", message=f"unexpected end of file; expected {_expected(accepts, context)}",
                          span=source.span(end, end), label="the file ends here", notes=notes)
    span, found = source.span(token.start_pos, token.end_pos), _found(token)
    keyword, brace = _new_declaration(e)
    if keyword is not None:
        return Diagnostic(code="E0001", message=f"unexpected `{keyword.value}`: the declaration above is not closed",
                          span=source.span(keyword.start_pos, keyword.end_pos), label="a new declaration starts here",
                          notes=(Label(span=source.span(brace.start_pos, brace.end_pos),
                                       message="this `{` is not closed"),),
                          help="add the missing `}` before it")
    if accepts == {"VERSION"}:
        return Diagnostic(code="E0018", message=f"expected a version like `v1`, found {found}", span=span,
                          help="versions are written `v1`, `v2`, ...")
    where_as_name = isinstance(prev, lark.Token) and prev.type == "NAME" and prev.value == "where"
    if where_as_name:  # after a window's duration a word may start `7d every 1h`: `where` lexes as a name
        span = source.span(prev.start_pos, prev.end_pos)
    if token.type == "WHERE" or where_as_name:
        return Diagnostic(code="E0016", message="`where` can only filter the first argument of an aggregation",
                          span=span, help="put the filter after the first argument: `count(t where amount > 100, 7d)`")
    if token.value in _COMPARISONS and any(isinstance(v, lark.Token) and v.value in _COMPARISONS
                                           for v in stack[-3:]):
        return Diagnostic(code="E0015", message="comparison operators cannot be chained", span=span,
                          label="second comparison", help="combine comparisons with `and`: `a < b and b < c`")
    if any(isinstance(v, lark.Token) and v.type == "DEFAULT" for v in stack[-3:]):
        return Diagnostic(code="E0017", message=f"a feature's default must be a literal value, found {found}",
                          span=span, help="defaults are constants such as `0`, `-1.5`, `\"none\"` or `false`")
    if (isinstance(prev, lark.Token) and prev.type not in ("NAME", "STRING") and token.type == "COLON"
            and re.fullmatch(r"[a-z_]+", prev.value)):
        return Diagnostic(code="E0011", message=f"`{prev.value}` is a keyword and cannot be used as a name",
                          span=source.span(prev.start_pos, prev.end_pos), help="choose another name")
    if accepts == {"COLON"} or ({"LIST", "VECTOR"} <= accepts and token.type not in accepts):
        what = "a type" if "COLON" not in accepts else "`:` and a type"
        after = f" after `{prev.value}`" if isinstance(prev, lark.Token) and prev.type == "NAME" else ""
        return Diagnostic(code="E0007", message=f"expected {what}{after}, found {found}", span=span,
                          help=_shape_help(context))
    if "EQUAL" in accepts and context == "FEATURES":
        return Diagnostic(code="E0006", message=f"expected `=` after the feature's type, found {found}",
                          span=span, help="a feature is written `name: type = expression`")
    return Diagnostic(code="E0001", message=f"unexpected {found}; expected {_expected(accepts, context)}",
                      span=span)


def _new_declaration(e: UnexpectedInput) -> tuple[lark.Token | None, lark.Token | None]:
    """The declaration keyword at the left margin that the parser met inside a still-open body
    (the error token, or the one before it, which the contextual lexer took for a name), and the
    unclosed `{`; (None, None) when the error is something else."""
    if not isinstance(e, UnexpectedToken) or _is_eof(e):
        return None, None
    stack = _value_stack(e)
    opened = [v for v in stack if isinstance(v, lark.Token) and v.type == "LBRACE"]
    if not opened:
        return None, None
    for tok in (e.token, stack[-1] if stack else None):
        if isinstance(tok, lark.Token) and tok.value in DECL_KEYWORDS and tok.column == 1 \
                and tok.start_pos is not None and tok.start_pos > opened[-1].start_pos:
            return tok, opened[-1]
    return None, None


def _shape_help(context: str) -> str:
    if context == "FEATURES":
        return "a feature is written `name: type = expression`"
    return "a field is written `name: type`, e.g. `amount: float64`"


def _too_deep(tree: lark.Tree, source: SourceFile) -> Diagnostic | None:
    """Find a subtree deeper than MAX_NESTING without recursing (the tree may be very deep).

    The diagnostic points at the whole feature or field (depth 3: start, declaration, item):
    the innermost node of a deep chain says little about where the nesting comes from.
    """
    stack: list[tuple[lark.Tree, int, lark.Tree]] = [(tree, 1, tree)]
    while stack:
        node, depth, item = stack.pop()
        if depth > MAX_NESTING:
            meta = item.meta
            return Diagnostic(code="E0014", message=f"expression nested too deeply (more than {MAX_NESTING} levels)",
                              span=source.span(meta.start_pos, meta.end_pos), label="in here",
                              help="split it into several features")
        stack.extend((c, depth + 1, c if depth + 1 == 3 else item)
                     for c in node.children if isinstance(c, lark.Tree))
    return None
