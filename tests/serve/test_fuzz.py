"""Fuzz the API from its committed OpenAPI document with schemathesis (bounded, loopback only), on a
server of the project the document describes (`features/`, default limits): no 5xx, every response
matches the document, schema-valid requests are accepted and schema-violating ones rejected.

Nothing is adjusted between the generator and the server: the schema states every rule the validator
applies (per-entity `at` and `request` live in the entity, so no rule ties two arrays' lengths), and
both runs below must end with 0 failures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import schemathesis
import schemathesis.checks as c
from hypothesis import HealthCheck, settings
from serve_harness import FEATURES, ROOT, Client, launch

schema = schemathesis.openapi.from_path(ROOT / "openapi.json")
# every response check, the two data-acceptance ones (ST201/ST202) included
CHECKS = [c.not_a_server_error, c.status_code_conformance, c.content_type_conformance,
          c.response_schema_conformance, c.response_headers_conformance, c.negative_data_rejection,
          c.positive_data_acceptance]
TOKEN = "fuzz"


@pytest.fixture(scope="module")
def documented(tmp_path_factory, demo):
    """A server of `features/` with the limits the committed document states."""
    proj = tmp_path_factory.mktemp("fuzz") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build"))  # the lock pins the fits
    s = launch(proj, tmp_path_factory.mktemp("fuzz-state") / "state", "--data-root", str(demo),
               "--allowed-lateness", "10d", token=TOKEN)
    yield s
    s.stop()


def test_served_document_is_the_committed_one(documented):
    status, _, doc = Client(documented.port).get("/openapi.json")  # open without the token
    assert status == 200
    assert doc == json.loads((ROOT / "openapi.json").read_text()), \
        "openapi.json is stale: uv run python -m astra.serve.openapi > openapi.json"


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case, documented):
    case.call_and_validate(base_url=documented.url, headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS,
                           timeout=30)


def test_schemathesis_run_finds_nothing(documented, tmp_path):
    """`schemathesis run` as a user would run it (every phase: examples, coverage, fuzzing; every
    check), bounded in examples and time, with a fixed seed so a failure reproduces."""
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", str(ROOT / "openapi.json"), "--url", documented.url,
           "-H", f"Authorization: Bearer {TOKEN}", "--checks", "all", "--max-examples", "40", "--seed", "19",
           "--workers", "1", "--request-timeout", "30", "--no-color"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"schemathesis run did not finish in 600 s:\n{(exc.stdout or '')[-3000:]}")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert re.search(r"\b0 failures?\b|No issues found", out), out[-3000:]
    assert re.search(r"Tested: 9\b", out), out[-3000:]  # every operation of the document was exercised
