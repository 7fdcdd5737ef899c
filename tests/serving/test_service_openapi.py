"""Property-based tests against the service's own OpenAPI document (schemathesis).

Requests generated from /docs.json, valid ones and invalid ones (wrong types, missing
fields, out-of-range values, unexpected keys), go to a real `radar serve` on 127.0.0.1;
no answer may be a 5xx or show a traceback. Bounded: a fixed number of examples per
operation and generation mode, derandomised, no shrinking.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES = 30  # per operation and generation mode
OPERATIONS = [
    ("/score", "POST"),
    ("/score_accounts", "POST"),
    ("/accounts/at-risk", "GET"),
    ("/accounts/opportunities", "GET"),
]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.base}/docs.json")


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_generated_request_gets_a_server_error(api_schema, server, path, method, mode):
    seen = []

    @given(case=api_schema[path][method].as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=("explicit", "reuse", "generate"),
    )
    def check(case):
        response = case.call(base_url=server.base, headers=server.headers, timeout=30)
        seen.append(response.status_code)
        assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:500]}"
        assert "Traceback" not in response.text

    check()
    assert seen, "schemathesis generated no request"
    if mode is schemathesis.GenerationMode.NEGATIVE:  # invalid input is answered, and refused
        assert any(400 <= s < 500 for s in seen), seen
