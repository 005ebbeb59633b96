"""Every shell and HTTP example of README.md and docs/*.md runs against the demo project.

A newcomer's walk-through: README's quick start (`astra demo`) on a fresh copy of the example
project, then each docs/ page's examples in document order, each page on its own fresh copy of
that state. `astra` is the installed command; `astra serve` runs on a free loopback port and the
documented host and port are rewritten to it. The conventions are in `doc_examples`.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doc_examples import Command, DocError, Http, Page, extract, python_script, shape_errors, split_commands

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent  # the venv's bin: `astra` there is the installed CLI
COMMAND_TIMEOUT = 180
READY_TIMEOUT = 60


def page(name: str) -> Page:
    return extract(ROOT / name, name)


def shell(cmd: Command, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    return subprocess.run(["bash", "-c", cmd.text], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)


class Served:
    """`astra serve` as documented, in the background on a free port, for a document's HTTP examples."""

    def __init__(self, cmd: Command, cwd: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = cwd / f"serve.{self.port}.log"
        text = "exec " + " ".join(map(shlex.quote, [*cmd.argv, "--port", str(self.port)]))
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(["bash", "-c", text], cwd=cwd, env=env, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"`{cmd.text}` exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.send(Http("GET", "/readyz", {}, None), timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`{cmd.text}` not ready in {READY_TIMEOUT} s:\n{self.output()}")
            time.sleep(0.2)

    def send(self, req: Http, timeout: float = 30) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(req.method, req.path, body=req.body, headers=req.headers)
            r = conn.getresponse()
            return r.status, r.read(), r.getheader("content-type", "")
        finally:
            conn.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def run_page(doc: Page, cwd: Path) -> int:
    """Run a page's examples in order; the number run."""
    server: Served | None = None
    try:
        for ex in doc.examples:
            step = ex.step
            if isinstance(step, Command) and step.is_serve:
                assert server is None, f"{ex.where}: a second `astra serve` in one document"
                server = Served(step, cwd)
            elif isinstance(step, Command):
                done = shell(step, cwd)
                assert done.returncode == step.exit, (
                    f"{ex.where}: `{step.text}` exited with {done.returncode}, the doc says {step.exit}\n"
                    f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
                assert "Traceback" not in done.stderr, f"{ex.where}: `{step.text}` printed a traceback"
            else:
                assert server is not None, f"{ex.where}: an HTTP example before any `astra serve` example"
                status, payload, ctype = server.send(step)
                text = payload.decode(errors="replace")[:2000]
                if step.status is None:
                    assert 200 <= status < 300, f"{ex.where}: {step.method} {step.path} -> {status}: {text}"
                else:
                    assert status == step.status, f"{ex.where}: {step.path} -> {status}, doc says {step.status}: {text}"
                if step.has_answer:
                    assert ctype.startswith("application/json"), f"{ex.where}: answered {ctype}: {text}"
                    errors = shape_errors(step.answer, json.loads(payload))
                    assert not errors, f"{ex.where}: the answer differs from the documented one:\n" + \
                        "\n".join(errors) + f"\nanswer: {text}"
    finally:
        if server is not None:
            server.stop()
    return len(doc.examples)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory) -> Path:
    """README's examples (the quick start) on a fresh copy of the example project."""
    home = tmp_path_factory.mktemp("newcomer")
    shutil.copytree(ROOT / "features", home / "features", ignore=shutil.ignore_patterns("build"))
    run_page(page("README.md"), home)
    return home


@pytest.mark.parametrize("name", DOCS)
def test_every_block_is_runnable_or_marked(name):
    doc = page(name)  # raises DocError on an unmarked illustrative block
    for line in doc.skipped:
        assert line.split(": ", 1)[1].strip(), line


def test_readme_quick_start_makes_the_demo_project(quick_start):
    steps = [ex.step for ex in page("README.md").examples]
    assert any(isinstance(s, Command) and s.argv[:2] == ["astra", "demo"] for s in steps)
    for name in ("transactions.parquet", "profiles.parquet", "spine.parquet"):
        assert (quick_start / "build" / "demo" / name).is_file(), name


@pytest.mark.parametrize("name", [d for d in DOCS if d != "README.md"])
def test_doc_examples_run_on_the_demo_project(name, quick_start, tmp_path):
    doc = page(name)
    if not doc.examples:
        pytest.skip(f"{name} has no shell or HTTP example")
    home = tmp_path / "project"
    shutil.copytree(quick_start, home)
    assert run_page(doc, home) == len(doc.examples)


@pytest.mark.parametrize("name", [d for d in DOCS if python_script(ROOT / d)])
def test_python_examples_run_on_the_demo_project(name, quick_start, tmp_path):
    """Each document's Python blocks run, in order, as one script on a copy of the demo project."""
    home = tmp_path / "project"
    shutil.copytree(quick_start, home)
    script = home / "doc_example.py"
    script.write_text(python_script(ROOT / name))
    done = subprocess.run([sys.executable, str(script)], cwd=home, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{name}: the Python examples failed:\n{done.stderr[-3000:]}"


# ------------------------------------------------------------------ the extractor itself

def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(text)
    return p


def test_an_unmarked_illustrative_block_fails(tmp_path):
    with pytest.raises(DocError, match="neither an astra command nor curl"):
        extract(write(tmp_path, "```sh\nuv run pytest\n```\n"), "doc.md")
    with pytest.raises(DocError, match="needs a reason"):
        extract(write(tmp_path, "<!-- not-run: -->\n```sh\nuv run pytest\n```\n"), "doc.md")
    with pytest.raises(DocError, match="answers no HTTP example"):
        extract(write(tmp_path, '```json\n{"a": 1}\n```\n'), "doc.md")
    with pytest.raises(DocError, match="without a language"):
        extract(write(tmp_path, "```\nastra compile\n```\n"), "doc.md")
    with pytest.raises(DocError, match="does not apply to `curl`"):
        extract(write(tmp_path, "<!-- exit: 1 -->\n```sh\ncurl -s http://127.0.0.1:8000/readyz\n```\n"), "doc.md")
    with pytest.raises(DocError, match="before a json block"):
        extract(write(tmp_path, '```sh\ncurl -s localhost/x\n```\n<!-- status: 404 -->\n```json\n{}\n```\n'), "doc.md")
    doc = extract(write(tmp_path, "<!-- not-run: the suite -->\n\n```sh\nuv run pytest\n```\n"), "doc.md")
    assert doc.examples == [] and doc.skipped == ["doc.md:3: the suite"]


def test_commands_requests_and_documented_answers_are_extracted(tmp_path):
    doc = extract(write(tmp_path, """
<!-- exit: 1 -->
```sh
uv run astra backfill features \\
    --out x.parquet   # a comment
astra compile
```

```sh
curl -s http://localhost:8000/v1/features -H 'Content-Type: application/json' -d '
{"service": "s",
 "version": 1}'
```

Prose.

```json
{"service": "s", "results": [{"values": [1]}]}
```

<!-- status: 404 -->
```http
GET /v1/registry?x=1 HTTP/1.1
Host: localhost
```
"""), "doc.md")
    steps = [ex.step for ex in doc.examples]
    assert [s.text for s in steps[:2]] == ["astra backfill features \\\n    --out x.parquet   # a comment",
                                         "astra compile"]
    assert [s.exit for s in steps[:2]] == [1, 1] and steps[0].argv[-1] == "x.parquet"
    req = steps[2]
    assert (req.method, req.path, json.loads(req.body)) == ("POST", "/v1/features", {"service": "s", "version": 1})
    assert req.answer == {"service": "s", "results": [{"values": [1]}]} and req.status is None
    assert (steps[3].method, steps[3].path, steps[3].status) == ("GET", "/v1/registry?x=1", 404)
    assert doc.examples[0].where == "doc.md:3"


def test_console_blocks_run_only_prompted_lines():
    assert split_commands("$ astra compile\nok\n$ astra graph\n", console=True) == ["astra compile", "astra graph"]


def test_shape_errors_name_missing_fields_and_wrong_kinds():
    documented = {"a": 1, "b": {"c": "x"}, "d": [{"e": True}], "f": None}
    assert shape_errors(documented, {"a": 2.5, "b": {"c": "y"}, "d": [{"e": False}], "f": 3}) == []
    errors = shape_errors(documented, {"a": "1", "b": {}, "d": [{"e": 1}]})
    assert errors == ['.a: documented 1, got "1"', ".b.c: missing (fields: [])", ".d[0].e: documented true, got 1",
                      ".f: missing (fields: ['a', 'b', 'd'])"]


def test_a_failing_example_fails_unless_the_doc_states_its_status(tmp_path):
    bad = extract(write(tmp_path, "```sh\nastra compile missing_dir\n```\n"), "doc.md")
    with pytest.raises(AssertionError, match="exited with 1, the doc says 0"):
        run_page(bad, tmp_path)
    stated = extract(write(tmp_path, "<!-- exit: 1 -->\n```sh\nuv run astra compile missing_dir\n```\n"), "doc.md")
    assert run_page(stated, tmp_path) == 1
    unserved = extract(write(tmp_path, "```sh\ncurl -s http://127.0.0.1:8000/readyz\n```\n"), "doc.md")
    with pytest.raises(AssertionError, match="before any `astra serve`"):
        run_page(unserved, tmp_path)
