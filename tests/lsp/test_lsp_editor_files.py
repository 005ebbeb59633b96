"""The editor files: the TextMate grammar is valid JSON whose regexes compile and whose keywords
cover every keyword of grammar/astra.lark (read from the grammar file, not copied); the VS Code
extension's manifest points at files that exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astra.lang.check import FUNCTIONS
from astra.ops.aggregations import AGGREGATIONS

ROOT = Path(__file__).resolve().parents[2]
EDITORS = ROOT / "editors"
LARK = (ROOT / "grammar" / "astra.lark").read_text(encoding="utf-8")
GRAMMAR = json.loads((EDITORS / "astra.tmLanguage.json").read_text(encoding="utf-8"))


def lark_keywords() -> set[str]:
    """The quoted words of the grammar's rules and terminals (comments left out)."""
    code = "\n".join(line.split("//", 1)[0] for line in LARK.splitlines())
    return set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', code))


def patterns(node) -> list[tuple[str, str]]:
    """Every (scope, regex) of the grammar: a pattern's own, and its captures' scopes with its regex."""
    out = []
    if isinstance(node, dict):
        for key in ("match", "begin", "end"):
            if key in node:
                out.append((node.get("name", ""), node[key]))
                for cap in node.get("captures", {}).values():
                    out.append((cap.get("name", ""), node[key]))
        for value in node.values():
            out.extend(patterns(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(patterns(item))
    return out


def matched_whole(word: str, scopes: tuple[str, ...], after: str = "") -> bool:
    """Does a pattern of one of `scopes` match exactly `word` (followed by `after`)?"""
    for scope, regex in patterns(GRAMMAR):
        if scope.startswith(scopes):
            m = re.search(regex, word + after)
            if m and m.group(0) == word:
                return True
    return False


def test_the_grammar_is_json_and_every_regex_compiles():
    assert GRAMMAR["scopeName"] == "source.astra"
    found = patterns(GRAMMAR)
    assert len(found) > 20
    for _, regex in found:
        re.compile(regex)
    for include in re.findall(r'"include": "#([^"]+)"', json.dumps(GRAMMAR)):
        assert include in GRAMMAR["repository"]


def test_every_keyword_of_the_language_is_highlighted_as_one():
    keywords = lark_keywords()
    assert {"entity", "features", "where", "if", "events", "snapshot", "null", "list"} <= keywords
    missing = [w for w in sorted(keywords)
               if not matched_whole(w, ("keyword.", "constant.language.", "storage.type."))]
    assert missing == []


def test_every_function_and_aggregation_is_highlighted():
    missing = [f for f in sorted({*FUNCTIONS, *AGGREGATIONS}) if not matched_whole(f, ("support.function.",), "(")]
    assert missing == []


DURATION = re.search(r"^DURATION(?:\.\d+)?:\s*/(.*?)(?:\(\?!.*\))?/\s*$", LARK, re.M).group(1)
TM_DURATION = next(r for scope, r in patterns(GRAMMAR) if scope.startswith("constant.numeric.duration"))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(DURATION, fullmatch=True))
def test_every_duration_literal_of_the_grammar_is_one_token(literal: str):
    m = re.search(TM_DURATION, f" {literal} ")
    assert m is not None and m.group(0) == literal


def test_comments_and_strings():
    comment = next(r for s, r in patterns(GRAMMAR) if s.startswith("comment."))
    assert re.search(comment, 'x = 1  # a "note" 🎉').group(0) == '# a "note" 🎉'


def test_the_vscode_manifest_points_at_files_that_exist():
    manifest = json.loads((EDITORS / "package.json").read_text(encoding="utf-8"))
    contributes = manifest["contributes"]
    [language] = contributes["languages"]
    assert language["extensions"] == [".feat"]
    assert (EDITORS / language["configuration"]).is_file()
    config = json.loads((EDITORS / language["configuration"]).read_text(encoding="utf-8"))
    assert config["comments"]["lineComment"] == "#"
    [grammar] = contributes["grammars"]
    assert (EDITORS / grammar["path"]).resolve() == (EDITORS / "astra.tmLanguage.json").resolve()
    assert grammar["scopeName"] == GRAMMAR["scopeName"] and grammar["language"] == language["id"]
    assert (EDITORS / manifest["main"]).is_file()
    assert contributes["configuration"]["properties"]["astra.server.command"]["default"] == ["astra", "lsp"]


def test_astra_lsp_is_a_command():
    done = subprocess.run([sys.executable, "-m", "astra.cli.main", "lsp", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "language server" in done.stdout


STUB_VSCODE = """
module.exports = {
  workspace: {
    getConfiguration: (section) => ({ get: (key, fallback) => (section === "astra" && key === "server.command"
      ? ["uv", "run", "astra", "lsp"] : fallback) }),
    createFileSystemWatcher: (glob) => ({ glob }),
  },
};
"""
STUB_CLIENT = """
class LanguageClient {
  constructor(id, name, server, client) { globalThis.started = { id, name, server, client }; }
  start() { return Promise.resolve(); }
  stop() { return Promise.resolve(); }
  dispose() {}
}
module.exports = { LanguageClient };
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_vscode_extension_starts_the_configured_server(tmp_path: Path):
    modules = tmp_path / "node_modules"
    (modules / "vscode").mkdir(parents=True)
    (modules / "vscode" / "index.js").write_text(STUB_VSCODE, encoding="utf-8")
    (modules / "vscode-languageclient").mkdir()
    (modules / "vscode-languageclient" / "node.js").write_text(STUB_CLIENT, encoding="utf-8")
    script = (f"const ext = require({json.dumps(str(EDITORS / 'extension.js'))});"
              "const ctx = { subscriptions: [] }; ext.activate(ctx);"
              "console.log(JSON.stringify({ started: globalThis.started, disposables: ctx.subscriptions.length }));")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NODE_PATH": str(modules)})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    started = seen["started"]
    assert started["server"] == {"command": "uv", "args": ["run", "astra", "lsp"]}
    assert {"scheme": "file", "language": "astra"} in started["client"]["documentSelector"]
    assert started["client"]["synchronize"]["fileEvents"]["glob"] == "**/{*.feat,astra.lock}"
    assert seen["disposables"] == 1
