"""Schemathesis against the OpenAPI document the running server publishes.

Every generated request, schema-valid or not, must get an answer the document describes: a
documented status code and content type, a body that matches its schema (the decision schema for a
determination, the problem schema for an error), never a 5xx, and a 4xx for every request that
violates the schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.config import SchemathesisConfig

from tests.service.conftest import Server

# A schema-valid case may still be refused: 422 where the case schema cannot express a rule (a date
# of service before the injury, a UR entry naming no request), 413 past the server's body limit, and
# 403 from the admin endpoint, which is off on this server (no admin token).
CONFIG = {
    "checks": {
        "negative_data_rejection": {"expected-statuses": [400, 413, 415, 422]},
        "positive_data_acceptance": {"expected-statuses": ["2xx", 403, 413, 422]},
    }
}

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(server: Server):  # type: ignore[no-untyped-def]
    # reload is tried too: it is off on this server, a 403 problem, which is checked against the document
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=SchemathesisConfig.from_dict(CONFIG))


# The batch endpoint is left out: its body is text whose every line is answered on its own line (a
# determination or a problem+json object, tests/service/test_batch_http.py), so no text body violates its
# schema, and a non-text value cannot be sent as a body at all.
@schema.exclude(path="/v1/determinations:batch").parametrize()
@settings(max_examples=40)
def test_every_answer_is_documented(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate()
