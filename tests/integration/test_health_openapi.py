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
