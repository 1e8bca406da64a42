"""Property-based API tests: schemathesis over the OpenAPI schema, hypothesis over /authz (not in it)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from limiter_service.app import create_app
from limiter_service.settings import Settings
from tests.limiter_service.limiter_testutil import TestClient

# The default rule set, memory store. Schemathesis runs the app's lifespan itself (in process).
APP = create_app(Settings(store="memory"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_no_server_error_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    """All default checks (not_a_server_error, response schema conformance, ...) but one.

    positive_data_acceptance is left out: the key's limit is 512 UTF-8 *bytes*, which JSON Schema
    cannot express (maxLength counts characters), so a schema-valid key of multi-byte characters may
    rightly get a 422. The byte limit has its own tests in test_limiter_api.py.
    """
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@st.composite
def forwarded(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND"]))
    path = "/" + draw(
        st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#%"), max_size=40)
    )
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=600)
    headers = draw(
        st.dictionaries(
            st.sampled_from(["x-api-key", "x-envoy-external-address", "x-forwarded-for", "host"]),
            header_text,
        )
    )
    return method, path, headers


@given(request=forwarded())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_authz_answers_only_200_or_429(request: tuple[str, str, dict[str, str]]) -> None:
    method, path, headers = request
    with TestClient(APP_AUTHZ, raise_server_exceptions=False) as client:
        r = client.request(method, "/authz" + path, headers=headers)
    assert r.status_code in (200, 429), (r.status_code, r.text)
    if r.status_code == 429:
        assert r.headers["Retry-After"].isdigit()


APP_AUTHZ = create_app(Settings(store="memory"))
