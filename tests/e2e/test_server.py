"""The real server over HTTP: ``claims-server serve`` answers /healthz and /openapi.json."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_server(database_url: str, tmp_path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path), "LOG_LEVEL": "WARNING"}
    env.pop("CELERY_BROKER_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "claims_server", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5)
                break
            except OSError:  # refused, reset or timed out while gunicorn boots
                time.sleep(0.2)
        else:
            pytest.fail("server did not start within 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


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
