"""Every API error is RFC 9457 problem+json with a request id; never HTML or a traceback."""

from __future__ import annotations

import json
import logging

import pytest
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from claims_server.errors import Conflict

PROBLEM = "application/problem+json"


class _ItemSchema(Schema):
    name = fields.String(required=True)
    units = fields.Integer(required=True)


@pytest.fixture
def app_with_probe_routes(app, monkeypatch):
    """Routes that exercise the error machinery the real API blueprints share."""
    from claims_server.security.policy import POLICY, PUBLIC

    # Deny by default: test-only routes need policy entries like real ones.
    for endpoint in ("probe.create", "probe.conflict", "probe.boom"):
        monkeypatch.setitem(POLICY, endpoint, PUBLIC)
    blp = Blueprint("probe", __name__, url_prefix="/api/v1/probe")

    @blp.route("/items", methods=["POST"])
    @blp.arguments(_ItemSchema)
    @blp.response(201, _ItemSchema)
    def create(item):
        return item

    @blp.route("/conflict", methods=["POST"])
    def conflict():
        raise Conflict("claim CLM123 is submitted; it cannot be edited")

    @blp.route("/boom")
    def boom():
        raise RuntimeError("patient Jane Canary-Doe DOB 1970-01-01 exploded")

    app.extensions["claims_server_api"].register_blueprint(blp)
    return app


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert "<html" not in response.get_data(as_text=True).lower()
    return body


def test_404_is_problem_json(client):
    _assert_problem(client.get("/api/v1/does-not-exist"), 404)


def test_405_is_problem_json_and_names_allowed_methods(client):
    response = client.delete("/healthz")
    _assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_400_invalid_json(app_with_probe_routes):
    client = app_with_probe_routes.test_client()
    response = client.post("/api/v1/probe/items", data="{not json", content_type="application/json")
    _assert_problem(response, 400)


def test_422_names_the_field_and_rule(app_with_probe_routes):
    client = app_with_probe_routes.test_client()
    response = client.post("/api/v1/probe/items", json={"name": "x", "units": "three"})
    body = _assert_problem(response, 422)
    assert {"field": "units", "location": "json", "message": "Not a valid integer."} in body["errors"]


def test_415_wrong_content_type(app_with_probe_routes):
    client = app_with_probe_routes.test_client()
    response = client.post(
        "/api/v1/probe/items", data="name=x", content_type="application/x-www-form-urlencoded"
    )
    body = _assert_problem(response, 415)
    assert "application/json" in body["detail"]


def test_413_before_the_body_is_read(app_with_probe_routes):
    app_with_probe_routes.config["MAX_CONTENT_LENGTH"] = 1024
    client = app_with_probe_routes.test_client()
    payload = json.dumps({"name": "x" * 5000, "units": 1})
    body = _assert_problem(
        client.post("/api/v1/probe/items", data=payload, content_type="application/json"), 413
    )
    assert body["limit_bytes"] == 1024


def test_409_from_a_domain_error(app_with_probe_routes):
    body = _assert_problem(app_with_probe_routes.test_client().post("/api/v1/probe/conflict"), 409)
    assert "cannot be edited" in body["detail"]


def test_500_hides_the_exception_text_from_client_and_log(app_with_probe_routes, caplog):
    client = app_with_probe_routes.test_client()
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/probe/boom")
    body = _assert_problem(response, 500)
    assert "Canary" not in json.dumps(body)
    assert body["request_id"]
    # The log keeps the request id and exception type for the operator; the JSON
    # formatter never writes the exception message, which may quote PHI.
    from claims_server.logs import JsonFormatter

    records = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert records, "the unhandled error was not logged"
    line = JsonFormatter().format(records[0])
    assert "RuntimeError" in line
    assert "Canary" not in line
    assert json.loads(line)["request_id"] == body["request_id"]


def test_request_id_is_echoed_or_generated(client):
    echoed = client.get("/healthz", headers={"X-Request-ID": "abcdef12-3456"})
    assert echoed.headers["X-Request-ID"] == "abcdef12-3456"
    # An id that could smuggle text into logs is replaced by a generated one.
    replaced = client.get("/healthz", headers={"X-Request-ID": "Jane Doe <script>"})
    assert replaced.headers["X-Request-ID"] != "Jane Doe <script>"
    assert len(replaced.headers["X-Request-ID"]) == 32
