"""Mutated copies of a `.feat` project, and the checks every compilation of one must pass.

Shared by `tests/lang/test_mutation_fuzz.py` (the CI run) and `bench/fuzz_compile.py` (long runs).
A case is one file of the project changed by one to three mutations: token deletions, insertions
and replacements (tokens drawn from the grammar's own terminals and from the project's files),
truncation, line swaps, deletions and duplications, stray characters. Cases are numbered and each
is derived from `(seed, number)` alone, so any failure is reproduced by its number.
"""

from __future__ import annotations

import collections
import random
import re
import shutil
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import attrs

from astra.compiler import Compilation, compile_project
from astra.diagnostics import Severity, render, render_all
from astra.source import SourceFile

# The scanner of the recovering parser, comments and whitespace dropped: one match per token.
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[A-Za-z_]\w*|[0-9][\w.]*|\?\?|[=!<>]=|\S')

# Samples of the grammar's regex terminals, edge values included.
REGEX_SAMPLES = (
    "x", "user", "user_id", "ts", "_", "list", "vector", "v1", "v2", "v0", "v99999999999999999999",
    "1d", "0d", "7d", "30s", "99999999999999999999d", "0", "1", "-1", "99999999999999999999", "1.5", ".5",
    "1e400", "1e", '""', '"x"', '"common/"', '"entities.feat"', '"services.feat"', '"."', '"../"', '"/"',
    '"\\q"', '"unterminated', "# a comment", '"a\x00b"', '"' + "x" * 300 + '"', '"spend.feat/"',
)
# Characters no token starts with, and whitespace the scanner must take in its stride.
STRAY = ("'", "$", "&", "|", "!", ";", "`", "\\", "\t", "\x00", "\x0c", "é", "\u00a0", "\u2028", "\ufeff", "😀")


def grammar_tokens() -> tuple[str, ...]:
    """Every keyword and punctuation terminal of the grammar, plus samples of its regex terminals."""
    from lark.lexer import PatternStr

    from astra.lang.parser import _parser

    fixed = sorted(t.pattern.value for t in _parser().terminals if isinstance(t.pattern, PatternStr))
    return (*fixed, *REGEX_SAMPLES)


def project_tokens(files: dict[str, str]) -> tuple[str, ...]:
    """Every distinct token of the project's files, in a stable order."""
    return tuple(sorted({m.group() for text in files.values() for m in _TOKEN.finditer(text)}))


def read_project(root: Path) -> dict[str, str]:
    """The project's `.feat` files (and its lock), relative path -> text."""
    out = {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.feat"))
           if "build" not in p.relative_to(root).parts}
    lock = root / "astra.lock"
    if lock.exists():
        out["astra.lock"] = lock.read_text(encoding="utf-8")
    return out


# --------------------------------------------------------------------------- mutations


def _spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _TOKEN.finditer(text)]


def delete_tokens(text: str, rng: random.Random, pool) -> str:
    spans = _spans(text)
    if not spans:
        return text
    i = rng.randrange(len(spans))
    j = min(len(spans) - 1, i + rng.choice((0, 0, 0, 1, 2, 4)))
    return text[:spans[i][0]] + text[spans[j][1]:]


def insert_token(text: str, rng: random.Random, pool) -> str:
    spans = _spans(text) or [(0, 0)]
    at = rng.choice(spans)[rng.randrange(2)]
    return text[:at] + rng.choice((" ", "", "\n")) + rng.choice(pool) + " " + text[at:]


def replace_token(text: str, rng: random.Random, pool) -> str:
    spans = _spans(text)
    if not spans:
        return text
    a, b = rng.choice(spans)
    return text[:a] + rng.choice(pool) + text[b:]


def _kind(token: str) -> str:
    """A token's lexical class: keyword, name, number, string or punctuation."""
    from astra.lang.lower import KEYWORDS

    first = token[:1]
    if token in KEYWORDS:
        return "keyword"
    if first.isalpha() or first == "_":
        return "name"
    if first.isdigit() or (first == "." and token[1:2].isdigit()):
        return "number"
    return "string" if first == '"' else "punct"


def replace_same_kind(text: str, rng: random.Random, pool) -> str:
    """A name for a name, a number for a number: mostly still parses, so the checker gets the case."""
    spans = _spans(text)
    if not spans:
        return text
    a, b = rng.choice(spans)
    same = [t for t in pool if _kind(t) == _kind(text[a:b])] or pool
    return text[:a] + rng.choice(same) + text[b:]


def swap_tokens(text: str, rng: random.Random, pool) -> str:
    spans = _spans(text)
    if len(spans) < 2:
        return text
    i = rng.randrange(len(spans) - 1)
    (a, b), (c, d) = spans[i], spans[i + 1]
    return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]


def truncate(text: str, rng: random.Random, pool) -> str:
    return text[:rng.randrange(len(text) + 1)]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def swap_lines(text: str, rng: random.Random, pool) -> str:
    lines = _lines(text)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def delete_line(text: str, rng: random.Random, pool) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def duplicate_line(text: str, rng: random.Random, pool) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return "\n".join(lines)


def stray_character(text: str, rng: random.Random, pool) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + rng.choice(STRAY) + text[at:]


MUTATIONS: tuple[Callable[[str, random.Random, tuple[str, ...]], str], ...] = (
    delete_tokens, delete_tokens, insert_token, insert_token, replace_token, replace_token, replace_same_kind,
    replace_same_kind, replace_same_kind, replace_same_kind, swap_tokens, truncate, swap_lines, delete_line,
    duplicate_line, stray_character,
)


@attrs.frozen
class Case:
    """One mutated project: which file changed, how, and its new text."""

    number: int
    file: str
    steps: tuple[str, ...]
    text: str


def make_case(files: dict[str, str], pool: tuple[str, ...], seed: int, number: int) -> Case:
    """Case `number` of run `seed`: one `.feat` file (imports included) changed one to three times."""
    rng = random.Random(f"{seed}:{number}")
    feats = sorted(f for f in files if f.endswith(".feat"))
    name = feats[number % len(feats)]  # every file gets its share
    text, steps = files[name], []
    # A third of the cases only trade names for names and numbers for numbers: they mostly parse,
    # so they exercise the checker and the plan rather than the parser's recovery.
    kinds = (replace_same_kind,) if rng.random() < 0.33 else MUTATIONS
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutation = rng.choice(kinds)
        text = mutation(text, rng, pool)
        steps.append(mutation.__name__)
    return Case(number=number, file=name, steps=tuple(steps), text=text)


# --------------------------------------------------------------------------- running and checking

# Diagnostics about the project as a whole, which have no place in a file to point at.
UNLOCATED_CODES = {"E0110"}


def problems(result: Compilation) -> list[str]:
    """Every way `result` breaks the compiler's contract with its user; empty when it keeps it."""
    out = []
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if result.plan is None and not errors:
        out.append("no plan, and no error to say why")
    for d in result.diagnostics:
        render(d, result.sources)
        spans = [(d.span, "primary"), *((n.span, f"note `{n.message}`") for n in d.notes)]
        for span, what in spans:
            if span.file == "<builtin>":
                if what == "primary" and d.code not in UNLOCATED_CODES:
                    out.append(f"[{d.code}] {d.message}: no location")
                continue
            bad = _bad_span(span, result.sources.get(span.file))
            if bad:
                out.append(f"[{d.code}] {d.message}: {what} span {span}: {bad}")
    shown = [(d.code, d.message, d.span) for d in result.diagnostics]
    out += [f"[{c}] {m} at {sp}: reported twice" for c, m, sp in {x for x in shown if shown.count(x) > 1}]
    render_all(result.diagnostics, result.sources)
    render_all(result.diagnostics, result.sources, "json")
    if result.ok:
        out += _plan_problems(result)
    return out


def _bad_span(span, src: SourceFile | None) -> str:
    if src is None:
        return "points into a file that was not read"
    if not 0 <= span.start <= span.end <= len(src.text):
        return f"offsets {span.start}..{span.end} outside a text of {len(src.text)} characters"
    if src.line_col(span.start) != (span.line, span.col) or src.line_col(span.end) != (span.end_line, span.end_col):
        return "line/col disagree with the offsets"
    return ""


def _plan_problems(result: Compilation) -> list[str]:
    """A clean plan must be whole: explainable, drawable, serialisable, every output resolvable."""
    from astra.plan.explain import explain
    from astra.plan.graph import to_dot, to_mermaid
    from astra.plan.serialize import to_data

    plan, out = result.plan, []
    ids = {f.id for f in plan.features}
    for svc in plan.services:
        out += [f"service {svc.id} outputs unknown feature {o.feature}" for o in svc.outputs if o.feature not in ids]
    if plan.features:  # one is enough: `explain` fingerprints the whole plan each time
        explain(plan, plan.features[-1])
    to_dot(plan.features)
    to_mermaid(plan.features)
    to_data(plan)
    return out


def compile_case(root: Path, files: dict[str, str], case: Case) -> list[str]:
    """Write `case` into the project copy at `root`, compile it in-process, check it, restore the file.

    Returns the problems found; an exception escaping the compiler is one, with its traceback.
    """
    path = root / case.file
    path.write_text(case.text, encoding="utf-8")
    try:
        result = compile_project(root, lock="check")
        found = problems(result)
    except Exception:
        found = [traceback.format_exc()]
    finally:
        path.write_text(files[case.file], encoding="utf-8")
        if "astra.lock" in files:  # a clean compile may record a metadata change: undo it
            (root / "astra.lock").write_text(files["astra.lock"], encoding="utf-8")
    return found


def copy_project(source: Path, target: Path) -> Path:
    """A fresh copy of the project at `source`, without build outputs."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("build"))
    return target


@attrs.frozen
class Failure:
    """A case that broke the contract: how it was made, and what went wrong."""

    case: Case
    problems: tuple[str, ...]

    def report(self) -> str:
        return (f"case {self.case.number}: {self.case.file} <- {', '.join(self.case.steps)}\n"
                + "\n".join(self.problems))


def run_cases(project: Path, seed: int, first: int, count: int) -> tuple[list[Failure], collections.Counter]:
    """Cases `first` .. `first + count - 1` of run `seed` on a fresh copy of `project`: the
    failures, and how many cases changed each file."""
    files = read_project(project)
    pool = grammar_tokens() + project_tokens(files)
    failures, per_file = [], collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(project, Path(tmp) / project.name)
        for n in range(first, first + count):
            case = make_case(files, pool, seed, n)
            per_file[case.file] += 1
            found = compile_case(root, files, case)
            if found:
                failures.append(Failure(case=case, problems=tuple(found)))
    return failures, per_file
