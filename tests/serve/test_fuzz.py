"""Fuzz the API from its committed OpenAPI document with schemathesis (bounded, loopback only), on a
server of the project the document describes (`features/`, default limits): no 5xx, every response
matches the document, schema-valid requests are accepted and schema-violating ones rejected."""

from __future__ import annotations

import json
import shutil

import pytest
import schemathesis
import schemathesis.checks as c
from hypothesis import HealthCheck, settings
from serve_harness import FEATURES, ROOT, Client, launch

schema = schemathesis.openapi.from_path(ROOT / "openapi.json")
CHECKS = [c.not_a_server_error, c.status_code_conformance, c.content_type_conformance,
          c.response_schema_conformance, c.response_headers_conformance, c.negative_data_rejection,
          c.positive_data_acceptance]
TOKEN = "fuzz"


@pytest.fixture(scope="module")
def documented(tmp_path_factory, demo):
    """A server of `features/` with the limits the committed document states."""
    proj = tmp_path_factory.mktemp("fuzz") / "features"
    shutil.copytree(FEATURES, proj, ignore=shutil.ignore_patterns("build", "astra.lock"))
    s = launch(proj, tmp_path_factory.mktemp("fuzz-state") / "state", "--data-root", str(demo),
               "--allowed-lateness", str(10 * 86400 * 10**6), token=TOKEN)
    yield s
    s.stop()


def test_served_document_is_the_committed_one(documented):
    status, _, doc = Client(documented.port).get("/openapi.json")  # open without the token
    assert status == 200
    assert doc == json.loads((ROOT / "openapi.json").read_text()), \
        "openapi.json is stale: uv run python -m astra.serve.openapi > openapi.json"


def _per_entity_lengths(body) -> None:
    """The one rule JSON Schema cannot state: an `at` or `request` array has one item per entity."""
    if isinstance(body, dict) and isinstance(body.get("entities"), list):
        n = len(body["entities"])
        for field in ("at", "request"):
            items = body.get(field)
            if isinstance(items, list) and items:
                body[field] = (items * n)[:n]


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case, documented):
    if case.meta is not None and case.meta.generation.mode.is_positive:
        _per_entity_lengths(case.body)
    case.call_and_validate(base_url=documented.url, headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS,
                           timeout=30)
