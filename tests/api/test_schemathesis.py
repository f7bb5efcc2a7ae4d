"""schemathesis over the OpenAPI document, against the app with a real InfluxDB behind it.

Every generated request must get no 5xx, a status code, content type, headers and
body the document declares, and 4xx for data the schema forbids. Positive data may
get 422 only for rules the schema cannot express (``from`` before ``to``, ranges
longer than the limit, …): those carry a code from :data:`api.errors.SEMANTIC_CODES`,
which replaces schemathesis' plain positive-data check.
"""

from __future__ import annotations

import orjson
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.errors import SEMANTIC_CODES
from api.settings import ApiSettings
from civicair.schema.storage import meta_to_line
from tests.api.conftest import T0, pm_line, write
from tests.conftest import DATABASE


@pytest.fixture
def api_schema():
    return schemathesis.openapi.from_dict(create_app(ApiSettings()).openapi())


@pytest.fixture
def seeded_client(influxdb, influx):
    write(influx, [pm_line("lab-1", T0 + 60 * i, pm25=5.0 + i % 7, pm25_atm=6.0, rh=50.0)
                   for i in range(120)])
    write(influx, [pm_line("lab-2", T0 + 60 * i, channel="b", qc=1, pm25=30.0) for i in range(10)])
    influx.write(meta_to_line("lab-1", {"name": "Lab 1", "lat": 52.0907, "lon": 5.1214,
                                        "sensors": {"a": "pms5003"}}, T0))
    with TestClient(create_app(ApiSettings(influx_url=influxdb.url, influx_db=DATABASE))) as client:
        yield client


schema = schemathesis.pytest.from_fixture("api_schema")


def positive_data_is_accepted_or_semantic(ctx, response, case):
    """Schema-valid requests: 2xx/404, or 422 for a rule between parameters."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    code = orjson.loads(response.content).get("code")
    assert code in SEMANTIC_CODES, f"schema-valid request refused with {code!r}: {response.content[:300]!r}"
    return None


@pytest.mark.slow  # every operation, 30 generated cases each: about 40 s
@schema.parametrize()
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_openapi_document(case, seeded_client):
    # Sent through Starlette's test client (httpx): schemathesis' own ASGI transport goes
    # through requests, whose pool introspection breaks on this urllib3.
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    response = seeded_client.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                                     headers=kwargs.get("headers"))
    case.validate_response(response, excluded_checks=[positive_data_acceptance],
                           additional_checks=[positive_data_is_accepted_or_semantic])
