"""A property-based test of the whole API from its own OpenAPI document (schemathesis),
against the real server process: for generated requests — valid and not — no answer is a
server error and none violates the document (status codes, content types, bodies, headers).

Kept short for the CI: a bounded number of examples per operation, derandomized so a run is
repeatable, coverage and stateful phases off.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi import checks as openapi_checks

from appliance import reminders
from appliance.db import write
from tests.api_support import WebServer, seed

pytestmark = pytest.mark.slow
EXAMPLES = 25
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    server = WebServer(tmp_path_factory.mktemp("schemathesis"))
    seed(server.db)
    with write(server.db) as conn:
        reminders.save_kind(conn, server.config, name="採血", text="{name}様 {date} {time} 採血",
                            days_before=1, send_time="17:00", actor="test", now=0.0)
    token = server.token("schemathesis", "send,read,contacts,reminders", rate=100_000)
    load_all_checks()
    config = schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Bearer {token}"},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "generation": {"max-examples": EXAMPLES, "deterministic": True},
    })
    schema = schemathesis.openapi.from_url(server.base + "/api/v1/openapi.json", config=config)
    schema.server = server
    try:
        yield schema
    finally:
        server.close()


def _operations() -> list[tuple[str, str, GenerationMode]]:
    # From the code's own registry: the same declarations the document is written from
    # (the schema itself is loaded from the running server, in the fixture). Invalid
    # requests only for operations that take something to get wrong.
    import importlib
    importlib.import_module("webui.api_views")   # importing it registers the operations
    from webui import api_v1
    out = []
    for op in api_v1.OPERATIONS:
        out.append((op.method, op.path, GenerationMode.POSITIVE))
        if op.path_params or op.query or op.request or op.idempotent:
            out.append((op.method, op.path, GenerationMode.NEGATIVE))
    return out


@pytest.mark.parametrize("method, path, mode", _operations())
def test_no_request_makes_the_api_fail_or_answer_outside_its_document(api_schema, method,
                                                                     path, mode):
    server = api_schema.server
    operation = api_schema[path][method]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        case.call_and_validate(base_url=server.base + "/api/v1", checks=CHECKS)

    check()
