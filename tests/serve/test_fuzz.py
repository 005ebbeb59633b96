"""Fuzz the API from its committed OpenAPI document with schemathesis (bounded, loopback only):
no 5xx, and every response matches the document."""

from __future__ import annotations

import schemathesis
import schemathesis.checks as c
from hypothesis import HealthCheck, settings
from serve_harness import ROOT

schema = schemathesis.openapi.from_path(ROOT / "openapi.json")
# The document is project-independent: a schema-valid body may still name a service the plan lacks
# (a located 4xx), so "valid data is accepted" does not apply; everything about responses does.
CHECKS = [c.not_a_server_error, c.status_code_conformance, c.content_type_conformance,
          c.response_schema_conformance, c.response_headers_conformance, c.negative_data_rejection]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case, api):
    case.call_and_validate(base_url=api.url, headers={"Authorization": f"Bearer {api.token}"}, checks=CHECKS,
                           timeout=10)
