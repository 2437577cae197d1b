"""Property-based API test: requests generated from the app's own OpenAPI description (schemathesis).

For the ClinicalTrials.gov-compatible API (``/api/v2``) every generated request must get a documented
status code and content type and a response matching the documented schema; for every other operation
in the description (the eligibility endpoints) no request may cause a server error. The number of
examples is bounded so the test stays fast in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from trialfinder.web import Settings, create_app
from trialfinder.web.db import StorePool

MAX_EXAMPLES = 40
V2 = "^/api/v2/"

# The description is read from the app itself (no request needed); the database is attached by the
# fixture below, because the sample database only exists once the test session has built it.
APP = create_app(Settings(auto_load_sample=False, warm_up=False))
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _database(sample_db_master: Path):
    APP.state.pool = StorePool(str(sample_db_master), size=4)
    yield
    APP.state.pool.close()
    APP.state.pool = None


def test_description_covers_the_api() -> None:
    paths = APP.openapi()["paths"]
    assert {"/api/v2/studies", "/api/v2/studies/{nctId}", "/api/v2/version", "/api/v2/stats/size",
            "/api/v2/studies/metadata", "/api/v2/stats/field/values"} <= set(paths)


@schema.include(path_regex=V2).parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_v2_conforms_to_its_description(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])


@schema.exclude(path_regex=V2).parametrize()
@settings(max_examples=MAX_EXAMPLES // 2, deadline=None, suppress_health_check=list(HealthCheck))
def test_other_operations_never_fail_with_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
