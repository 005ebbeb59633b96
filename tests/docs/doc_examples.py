"""The shell and HTTP examples of README.md and docs/*.md, extracted so that a test can run them.

Conventions for the documents (the test fails on a block that follows none of them):

* A fenced ```sh, ```bash or ```console block is runnable: every command in it starts with
  `astra`, `uv run astra` or `curl` (in ```console blocks, commands are the lines after `$ `;
  the other lines are output). Lines ending in `\\` continue, and so does a quoted string left
  open. Each command must exit with 0, or with N when `<!-- exit: N -->` stands right before the
  fence.
* `astra serve ...` is started in the background (on a free loopback port) and stays up for the
  rest of its document; the HTTP examples after it go to it.
* An HTTP example is a `curl` command (`-X`, `-H`, `-d`/`--data`/`--json`, `-s`, `-S`, `-f`) or a
  ```http block (`METHOD /path`, headers, a blank line, the body). Its host and port are rewritten
  to the served one; the answer must be a 2xx, or N with `<!-- status: N -->` before the fence.
* The first ```json block after an HTTP example (before the next runnable block) is its documented
  answer: the real answer must have every field it shows, at every depth, of the same JSON kind
  (a documented `null` matches anything). Any other ```json block must be marked not-run.
* `<!-- not-run: reason -->` right before a fence marks an illustrative block (a reason is
  required); a bare ``` block that starts like a command is an error (give it a language).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SHELL = ("sh", "bash", "console", "shell")
MARKER = re.compile(r"<!--\s*(not-run|exit|status)\s*:?\s*(.*?)\s*-->")
COMMANDLIKE = re.compile(r"^\s*(\$ )?(uv run astra|astra|curl)\b")


class DocError(Exception):
    """A block that is neither runnable nor marked, or a malformed example."""


@dataclass
class Http:
    """One HTTP request of a document."""

    method: str
    url: str  # a path, or a full URL whose host is rewritten
    headers: dict[str, str]
    body: bytes | None
    status: int | None = None  # documented status; None: any 2xx
    answer: object = None  # the documented answer's JSON, when one follows
    has_answer: bool = False

    @property
    def path(self) -> str:
        parts = urlsplit(self.url if "://" in self.url else f"http://x{self.url}" if self.url.startswith("/")
                         else f"http://{self.url}")
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass
class Command:
    """One shell command of a document (`astra ...`, normalised from `uv run astra ...`)."""

    text: str
    exit: int = 0

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def is_serve(self) -> bool:
        argv = self.argv
        return len(argv) > 1 and argv[0] == "astra" and argv[1] == "serve"


@dataclass
class Example:
    """A runnable example and where it is (`docs/serving.md:57`)."""

    where: str
    step: Command | Http


@dataclass
class Page:
    name: str
    examples: list[Example] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # `where: reason` of not-run blocks


def fences(text: str):
    """(line number of the fence, info string, body, marker (kind, value) or None) per fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(`{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        start, ticks, info = i, m.group(2), m.group(3).strip().split(" ")[0].lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(ticks):
            j += 1
        marker = None
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0 and (mm := MARKER.search(lines[k])) and lines[k].strip().startswith("<!--"):
            marker = (mm.group(1), mm.group(2))
        yield start + 1, info, "\n".join(lines[start + 1:j]), marker
        i = j + 1


def split_commands(body: str, console: bool) -> list[str]:
    """The commands of a shell block: continuation lines and open quotes joined."""
    lines = body.splitlines()
    if console:
        lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
    out, cur = [], ""
    for ln in lines:
        if not cur and (not ln.strip() or ln.lstrip().startswith("#")):
            continue
        cur = f"{cur}\n{ln}" if cur else ln
        if cur.endswith("\\"):
            continue
        try:
            shlex.split(cur, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        out.append(cur)
        cur = ""
    if cur:
        raise DocError(f"unterminated command: {cur!r}")
    return out


def parse_curl(argv: list[str]) -> Http:
    """The request of a `curl` command line (a small, strict subset of curl's options)."""
    method, url, headers, body = None, None, {}, None
    it = iter(argv[1:])
    for arg in it:
        if arg in ("-s", "-S", "-sS", "--silent", "--show-error", "-f", "--fail", "-sf", "-fsS"):
            continue
        if arg in ("-X", "--request"):
            method = next(it)
        elif arg in ("-H", "--header"):
            name, _, value = next(it).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw", "--data-binary"):
            body = next(it).encode()
        elif arg == "--json":
            body = next(it).encode()
            headers.setdefault("content-type", "application/json")
            headers.setdefault("accept", "application/json")
        elif arg.startswith("-"):
            raise DocError(f"curl option {arg} is not understood by the doc test")
        elif url is None:
            url = arg
        else:
            raise DocError(f"curl with two URLs: {url}, {arg}")
    if url is None:
        raise DocError("curl without a URL")
    if body is not None:
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    return Http(method or ("POST" if body is not None else "GET"), url, headers, body)


def parse_http(body: str) -> Http:
    """A ```http block: `METHOD /path [HTTP/1.1]`, headers, a blank line, the body."""
    head, _, payload = body.strip("\n").partition("\n\n")
    first, *rest = head.splitlines()
    parts = first.split()
    if len(parts) < 2:
        raise DocError(f"an http block starts with `METHOD /path`, not {first!r}")
    headers = {}
    for ln in rest:
        name, _, value = ln.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Http(parts[0].upper(), parts[1], headers, payload.encode() if payload.strip() else None)


def _marked(marker, kind: str) -> int | None:
    if marker is None or marker[0] != kind:
        return None
    if not marker[1].isdigit():
        raise DocError(f"`<!-- {kind}: N -->` needs a number, got {marker[1]!r}")
    return int(marker[1])


def extract(path: Path, name: str) -> Page:
    """Every runnable example of one Markdown file, in document order; DocError on a block that is
    neither runnable nor marked."""
    page = Page(name)
    last_http: Http | None = None
    for line, info, body, marker in fences(path.read_text()):
        where = f"{name}:{line}"
        if marker and marker[0] == "not-run":
            if not marker[1]:
                raise DocError(f"{where}: `<!-- not-run: reason -->` needs a reason")
            page.skipped.append(f"{where}: {marker[1]}")
            continue
        if marker and not (info in SHELL or info == "http"):
            raise DocError(f"{where}: `<!-- {marker[0]}: ... -->` before a {info or 'plain'} block")
        if info in SHELL:
            last_http = None
            commands = split_commands(body, info == "console")
            if not commands:
                raise DocError(f"{where}: a {info} block without a command")
            for text in commands:
                text = re.sub(r"^\s*uv run (?=astra\b)", "", text)
                argv = shlex.split(text, comments=True)
                if not argv:
                    raise DocError(f"{where}: an empty command")
                if marker and marker[0] != ("exit" if argv[0] == "astra" else "status"):
                    raise DocError(f"{where}: `<!-- {marker[0]}: ... -->` does not apply to `{argv[0]}`; "
                                   "astra commands take `exit`, HTTP examples `status`")
                if argv[0] == "astra":
                    page.examples.append(Example(where, Command(text, _marked(marker, "exit") or 0)))
                elif argv[0] == "curl":
                    last_http = parse_curl(argv)
                    last_http.status = _marked(marker, "status")
                    page.examples.append(Example(where, last_http))
                else:
                    raise DocError(f"{where}: `{argv[0]}` is neither an astra command nor curl; "
                                   "mark the block `<!-- not-run: reason -->`")
        elif info == "http":
            if marker and marker[0] != "status":
                raise DocError(f"{where}: an http block takes `<!-- status: N -->`, not `{marker[0]}`")
            last_http = parse_http(body)
            last_http.status = _marked(marker, "status")
            page.examples.append(Example(where, last_http))
        elif info == "json":
            if last_http is None or last_http.has_answer:
                raise DocError(f"{where}: a json block that answers no HTTP example; run it (curl or an "
                               "http block) or mark it `<!-- not-run: reason -->`")
            try:
                last_http.answer = json.loads(body)
            except ValueError as err:
                raise DocError(f"{where}: the documented answer is not JSON: {err}") from None
            last_http.has_answer = True
        elif info == "" and COMMANDLIKE.match(body.split("\n", 1)[0]):
            raise DocError(f"{where}: a command in a block without a language; write ```sh")
    return page


def shape_errors(documented, actual, at: str = "") -> list[str]:
    """Where `actual` lacks a field `documented` shows, or holds another kind of JSON value."""
    if documented is None:
        return []
    kinds = ((bool,), (int, float), (str,), (list,), (dict,))
    kind = next(k for k in kinds if isinstance(documented, k))
    if not isinstance(actual, kind) or (kind != (bool,) and isinstance(actual, bool)):
        return [f"{at or 'the answer'}: documented {json.dumps(documented)[:60]}, got {json.dumps(actual)[:60]}"]
    errors = []
    if isinstance(documented, dict):
        for key, value in documented.items():
            if key not in actual:
                errors.append(f"{at}.{key}: missing (fields: {sorted(actual)})")
            else:
                errors += shape_errors(value, actual[key], f"{at}.{key}")
    elif isinstance(documented, list) and documented and actual:
        errors += shape_errors(documented[0], actual[0], f"{at}[0]")
    return errors


def python_script(path: Path) -> str:
    """A document's ```python blocks (those not marked not-run), in order, as one script: later
    blocks may use what earlier ones defined, as a reader running them in one session would."""
    parts = []
    for line, info, body, marker in fences(path.read_text()):
        if info.split()[:1] == ["python"] and not (marker and marker[0] == "not-run"):
            parts.append(f"# {path.name}:{line}\n{body}")
    return "\n".join(parts)
