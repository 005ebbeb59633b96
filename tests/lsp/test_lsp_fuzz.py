"""Mutated buffers (the compiler's own mutation fuzzer, `tests/lang/mutations.py`) typed into a
real server one after another: for each, the diagnostics pushed for the project's files are
exactly those `astra compile` gives for the same text on disk, and every request still answers."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from lsp_expected import compiled, pushed
from lsp_session import Docs, settle, uri
from test_lsp_robustness import every_request, failures

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lang"))
from mutations import grammar_tokens, make_case, project_tokens, read_project

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEED, CASES = 20, 16


async def test_mutated_buffers_get_the_compilers_diagnostics(client, project: Path, tmp_path: Path):
    files = {name: text for name, text in read_project(project).items() if name.endswith(".feat")}
    pool = grammar_tokens() + project_tokens(files)
    docs = Docs(client)
    opened = {name: docs.open(project / name) for name in files}
    every = set(opened.values())
    await settle(client, lambda: every <= set(client.diagnostics))
    rng = random.Random(SEED)
    previous = None
    for number in range(CASES):
        case = make_case(files, pool, SEED, number)
        want = compiled(project, {case.file: case.text}, tmp_path)
        for u in every:
            client.diagnostics.pop(u, None)
        if previous is not None and previous != case.file:
            docs.change(opened[previous], files[previous])
        docs.change(opened[case.file], case.text)
        previous = case.file

        def arrived(want=want) -> bool:
            return every <= set(client.diagnostics) and pushed(project, client.diagnostics) == want

        await settle(client, arrived)
        assert pushed(project, client.diagnostics) == want, f"case {number}: {case.file} {case.steps}"
        u = opened[case.file]
        assert uri(project / case.file) == u
        await every_request(client, u, case.text[: rng.randrange(len(case.text) + 1)])
    assert failures(client) == []
