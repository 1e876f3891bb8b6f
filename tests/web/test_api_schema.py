"""The JSON API against its own OpenAPI document (schemathesis), on both engines, briefly.

Schemathesis reads /api/openapi.json from the running app and sends generated requests to every
operation with an admin's bearer token, valid ones and invalid ones (negative mode): no answer may be
a 5xx, and every answer must match what the document declares for its status code (401/403/404/415
bodies, the 422 body, the results).
The number of examples per operation is small so the whole file takes well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from publisher import accounts
from publisher.pipeline import workflow
from tests.web.conftest import make_item

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: examples per operation (about a dozen operations, two engines): a minute at most in all
EXAMPLES = 15


@pytest.fixture
def admin_token(app: Any) -> str:
    with app.session() as s:
        return accounts.create_token(s, user=workflow.get_user(s, "admin"), name="schemathesis")[0]


def test_api_answers_as_documented(app: Any, webapp: Any, admin_token: str) -> None:
    for _ in range(2):  # something for the item routes to find
        make_item(app, author="ed", stage="scheduled")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", webapp)
    headers = {"Authorization": f"Bearer {admin_token}"}
    failed, ran = {}, 0
    operations = [(r.ok(), mode) for r in schema.get_all_operations() for mode in GenerationMode]
    for operation, mode in operations:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - every operation's failure is reported, not just the first
            failed[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
        ran += 1
    assert ran >= 20, ran
    assert not failed, "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())
