"""/healthz reports the database and broker; /openapi.json describes the API."""

from __future__ import annotations

import re

from claims_server import __version__


def test_healthz_reports_database_and_in_process_tasks(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "version": __version__,
        "database": "ok",
        "broker": "not configured",
        "tasks": "in-process",
        "scheduler": "in-process",
        "overdue_jobs": [],
    }


def test_healthz_is_503_when_the_configured_broker_is_unreachable(database_url, tmp_path):
    from claims_server import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(tmp_path),
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        }
    )
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        body = response.get_json()
        assert body["status"] == "degraded"
        assert body["database"] == "ok"
        assert body["broker"].startswith("unreachable")
    finally:
        from claims_server.tasks.celery_app import configure_celery

        configure_celery(app.extensions["claims_server"].settings.__class__())


def test_openapi_document_is_3_1_and_generated_from_the_routes(client, app):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["version"] == __version__
    health = doc["paths"]["/healthz"]["get"]
    assert set(health["responses"]) >= {"200", "503"}
    schema_ref = health["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/Health")
    # Every API rule the app serves appears in the document.
    documented = set(doc["paths"])
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            assert path in documented, f"{rule.rule} is served but not in /openapi.json"


#: Routes deliberately left out of /openapi.json, by endpoint prefix: the FHIR facade (its own
#: CapabilityStatement at /fhir/R4/metadata), the staff workspace and the patient pages (HTML),
#: static files and the document itself.
UNDOCUMENTED_ENDPOINTS = ("fhir.", "ui.", "portal.", "api-docs.")
UNDOCUMENTED_EXACT = {"static", "ui_root"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        _, section, kind, name = node["$ref"].split("/")
        node = doc[section][kind][name]
    return node


def test_every_error_response_of_every_operation_is_problem_json(client):
    doc = client.get("/openapi.json").get_json()
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"type", "title", "status", "detail"}
    assert set(problem["properties"]) >= {"instance", "request_id", "errors"}
    checked = 0
    for path, method, operation in _operations(doc):
        responses = operation["responses"]
        assert "default" in responses, f"{method} {path} has no default (error) response"
        assert any(code.startswith("2") for code in responses), f"{method} {path} documents no success"
        for code, response in responses.items():
            if code == "default" or code[0] in "45":
                content = _resolve(doc, response).get("content", {})
                assert list(content) == ["application/problem+json"], (method, path, code, content)
                schema = content["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)
                checked += 1
    assert checked > 100


def test_every_route_is_documented_or_deliberately_left_out(app, client):
    doc = client.get("/openapi.json").get_json()
    documented = {(path, method) for path, method, _ in _operations(doc)}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_EXACT or rule.endpoint.startswith(UNDOCUMENTED_ENDPOINTS):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if (path, method.lower()) not in documented:
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, "served but not in /openapi.json: " + ", ".join(sorted(missing))
    # And nothing documented that is not served.
    served = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", r.rule), m.lower())
        for r in app.url_map.iter_rules()
        for m in (r.methods or set())
    }
    assert documented <= served, documented - served


def test_one_route_per_path_and_method(app):
    """Two views on one path and method: the first registered answers and the second is dead
    (POST /claims/<id>/void was the claims transition, shadowing the corrections view the
    document described)."""
    seen: dict[tuple[str, str], str] = {}
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            key = (rule.rule, method)
            assert key not in seen, f"{method} {rule.rule}: {seen.get(key)} and {rule.endpoint}"
            seen[key] = rule.endpoint


def test_public_operations_need_no_credentials_and_the_rest_do(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["security"] == [{"bearer": []}, {"session_cookie": []}]
    assert doc["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/api/v1/claims"]["get"]


def test_money_postings_document_the_required_idempotency_key(client):
    doc = client.get("/openapi.json").get_json()
    payment = doc["paths"]["/api/v1/patients/{patient_id}/payments"]["post"]
    header = next(p for p in payment["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and header["required"] is True
    create = doc["paths"]["/api/v1/claims"]["post"]
    header = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is False
