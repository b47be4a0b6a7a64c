"""The real server over HTTP: ``claims-server serve`` answers /healthz and /openapi.json."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest


def test_health_and_openapi_over_http(running_server: str):
    with urllib.request.urlopen(running_server + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert response.headers["X-Request-ID"]
        assert json.load(response)["database"] == "ok"
    with urllib.request.urlopen(running_server + "/openapi.json", timeout=5) as response:
        assert json.load(response)["openapi"].startswith("3.1")


def test_unknown_route_over_http_is_problem_json(running_server: str):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(running_server + "/api/v1/nothing-here", timeout=5)
    assert caught.value.code == 404
    assert caught.value.headers["Content-Type"] == "application/problem+json"
    assert json.load(caught.value)["status"] == 404


def test_stopping_the_server_stops_gunicorn_too(database_url: str, tmp_path):
    """`claims-server serve` becomes gunicorn, so the SIGTERM a service manager (or this
    fixture) sends stops the server itself rather than orphaning it."""
    import time

    from tests.e2e.conftest import start_server

    with start_server(database_url, tmp_path) as base:
        urllib.request.urlopen(base + "/healthz", timeout=5).close()
    time.sleep(0.5)
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/healthz", timeout=2).close()
