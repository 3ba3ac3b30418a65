"""openapi.yaml is the API's contract: a valid OpenAPI 3.0 document whose routes are template.yaml's and the local
gateway's, which docs/api.md describes route for route and status for status; and what the local gateway emulates of
API Gateway (the usage plan, the gateway responses' headers) is what the template configures."""

from __future__ import annotations

import re
from typing import Any

import yaml
from openapi_spec_validator import validate

from local_stack.gateway import GATEWAY_HEADERS, ROUTES, routes_from_openapi
from local_stack.usage_plan import UsagePlan
from tests.infra.template_support import load_sam_template
from tests.tools import ROOT

OPENAPI = ROOT / "openapi.yaml"
API_DOC = ROOT / "docs" / "api.md"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    return loaded


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) -> operation."""
    return {
        (method.upper(), path): operation
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"]}


def test_the_document_is_valid_openapi_3() -> None:
    validate(document())
    assert document()["openapi"].startswith("3.0")  # API Gateway imports OpenAPI 3.0


def test_every_route_but_the_page_needs_the_api_key() -> None:
    scheme = document()["components"]["securitySchemes"]["apiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "x-api-key")
    assert document()["security"] == [{"apiKey": []}]
    public = {key for key, operation in operations().items() if operation.get("security") == []}
    assert public == {("GET", "/")}


def _template_routes() -> set[tuple[str, str, bool]]:
    function = load_sam_template()["Resources"]["GenerateImageFunction"]["Properties"]
    routes = set()
    for event in function["Events"].values():
        assert event["Type"] == "Api"
        properties = event["Properties"]
        key_required = properties.get("Auth", {}).get("ApiKeyRequired", True)  # the API's default: required
        routes.add((properties["Method"].upper(), properties["Path"], key_required))
    return routes


def test_the_template_the_document_and_the_local_gateway_have_the_same_routes() -> None:
    documented = {(method, path, operation.get("security") != []) for (method, path), operation in operations().items()}
    gateway = {(route.method, route.resource, route.api_key_required) for route in ROUTES}
    assert documented == _template_routes() == gateway
    assert len(documented) == 5


def test_the_gateway_reads_its_routes_from_the_document(tmp_path: Any) -> None:
    changed = document()
    changed["paths"]["/extra"] = {"delete": {"responses": {"204": {"description": "gone"}}, "security": []}}
    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(changed))
    assert ("DELETE", "/extra", False) in {
        (r.method, r.resource, r.api_key_required) for r in routes_from_openapi(path)
    }


def test_every_error_status_is_documented_for_every_keyed_route() -> None:
    for (method, path), operation in operations().items():
        if operation.get("security") == []:
            continue
        # API Gateway's own answers can come from any keyed route: a refused key, the usage plan, and a
        # function that failed.
        assert {403, 429, 500, 502} <= statuses(operation), (method, path)


# ---- docs/api.md describes the same API ---------------------------------------------------------------------


def _doc_routes() -> set[tuple[str, str]]:
    headings = re.findall(r"^## (GET|POST|PUT|DELETE|PATCH) (\S+)$", API_DOC.read_text(encoding="utf-8"), re.M)
    return {(method, path) for method, path in headings}


def _doc_error_table() -> list[tuple[int, str]]:
    """(status, code cell) rows of docs/api.md's Errors table."""
    text = API_DOC.read_text(encoding="utf-8")
    table = text[text.index("### Errors") :].split("\n## ", 1)[0]
    return [(int(status), codes) for status, codes in re.findall(r"^\| (\d{3}) \| ([^|]*) \|", table, re.M)]


def test_the_reference_has_a_section_per_route() -> None:
    assert _doc_routes() == {(method, path) for method, path in operations()}


def test_the_reference_and_the_document_list_the_same_error_statuses() -> None:
    documented = {status for operation in operations().values() for status in statuses(operation) if status >= 400}
    assert {status for status, _ in _doc_error_table()} == documented


def test_every_error_code_in_the_reference_is_in_the_document() -> None:
    codes = {code for _, cell in _doc_error_table() for code in re.findall(r"`([A-Za-z]+)`", cell)}
    assert codes  # InvalidRequest, ContentFiltered, NotFound, ...
    text = OPENAPI.read_text(encoding="utf-8")
    assert sorted(code for code in codes if code not in text) == []


# ---- what the local gateway emulates is what the template configures ------------------------------------------


def test_the_local_usage_plan_is_the_templates() -> None:
    parameters = load_sam_template()["Parameters"]
    assert UsagePlan.from_template() == UsagePlan(
        rate=float(parameters["ApiThrottleRateLimit"]["Default"]),
        burst=int(parameters["ApiThrottleBurstLimit"]["Default"]),
        quota_per_day=int(parameters["ApiDailyQuota"]["Default"]),
    )


def test_api_gateways_own_answers_carry_the_headers_the_local_gateway_sends() -> None:
    api = load_sam_template()["Resources"]["ImageApi"]["Properties"]
    for response in ("DEFAULT_4XX", "DEFAULT_5XX"):
        headers = api["GatewayResponses"][response]["ResponseParameters"]["Headers"]
        # A header value in a gateway response is a quoted literal: 'nosniff'.
        assert {name: value.strip("'") for name, value in headers.items()} == GATEWAY_HEADERS
