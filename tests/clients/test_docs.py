"""docs/python.md's `astra.Client` examples, which the documentation run cannot execute (it starts no
server), run here against a live `astra serve` on the demo data."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "docs"))

from doc_examples import fences  # noqa: E402

DOCUMENTED_URL = "http://127.0.0.1:8000"


def client_blocks() -> list[str]:
    text = (ROOT / "docs" / "python.md").read_text()
    return [body for _, info, body, marker in fences(text)
            if info == "python" and marker and marker[0] == "not-run" and "tests/clients/test_docs.py" in marker[1]]


def test_the_client_examples_run_against_a_server(server, monkeypatch):
    blocks = client_blocks()
    assert blocks and all(DOCUMENTED_URL in b for b in blocks)
    monkeypatch.setenv("ASTRA_TOKEN", "s3cret")  # the documented client reads the server's token from here
    out = io.StringIO()
    for body in blocks:
        with contextlib.redirect_stdout(out):
            exec(compile(body.replace(DOCUMENTED_URL, server.url), "docs/python.md", "exec"), {})
    assert "tx_count_7d" in out.getvalue()
