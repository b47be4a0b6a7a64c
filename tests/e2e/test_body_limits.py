"""A 50 MB JSON body against the real server (gunicorn), as the attack sent it (issue 15, finding 3).

Before the input limits, 44 MB to /api/v1/claims/validate took 31 s and 760 MB, gunicorn killed
the worker and the client got an HTML 500. Now the body is refused with a 413 problem+json
before it is buffered, within a second or two, and the server answers other requests
meanwhile. Sent over a raw socket the way a careful HTTP client does: stop sending when the
server has answered (the server does not read a refused body).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import start_server

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 256 * 1024


@pytest.fixture
def served(database_url: str, tmp_path) -> Iterator[tuple[str, str]]:
    """The server and a signed-in biller's session token (with a confirmed second factor)."""
    import uuid

    import pyotp

    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory, unit_of_work
    from claims_server.models import Role
    from claims_server.security import clock
    from claims_server.security.authn import create_user, open_session
    from claims_server.security.principal import acting_as, system_principal

    engine = make_engine(database_url)
    try:
        with (
            acting_as(system_principal("test:limits")),
            unit_of_work(make_session_factory(engine)) as session,
        ):
            user = create_user(
                session,
                username=f"limits-{uuid.uuid4().hex[:8]}",
                display_name="Limits e2e",
                role=Role.BILLER,
                password=None,
            )
            user.totp_secret, user.totp_enabled = pyotp.random_base32(), True
            token = open_session(session, user, load_settings({"INSTANCE_PATH": str(tmp_path)}), clock.now())
    finally:
        engine.dispose()
    with start_server(database_url, tmp_path) as base:
        yield base, token


def post_huge(base: str, token: str, path: str, size: int, *, chunked: bool) -> dict[str, Any]:
    """POST ``size`` bytes of a JSON array; returns status, headers, body, bytes sent and seconds."""
    url = urlsplit(base)
    started = time.monotonic()
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    piece = b"[" + b'"' + b"x" * (CHUNK - 4) + b'",'  # a long array of long strings, ~50 MB of it
    sent = 0
    try:
        while sent < size:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server has answered: a careful client stops sending
            data = piece[: size - sent]
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            sent += len(data)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed its side after answering; the answer is still to be read
    raw = b""
    try:
        while chunk := sock.recv(65536):
            raw += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return {
        "status": int(lines[0].split()[1]) if lines and lines[0] else None,
        "headers": headers,
        "body": body,
        "sent": sent,
        "seconds": time.monotonic() - started,
    }


def _get(base: str, token: str, path: str) -> int:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_json_body_is_refused_quickly_while_the_server_keeps_serving(served, chunked):
    base, token = served
    results: dict[str, Any] = {}

    def huge() -> None:
        results["huge"] = post_huge(base, token, "/api/v1/claims/validate", FIFTY_MB, chunked=chunked)

    sender = threading.Thread(target=huge)
    sender.start()
    others = []
    while sender.is_alive() and len(others) < 20:  # other requests while the big one is in flight
        others.append(_get(base, token, "/api/v1/claims"))
    sender.join(timeout=60)
    assert not sender.is_alive()
    others.append(_get(base, token, "/api/v1/claims"))
    assert set(others) == {200}

    answer = results["huge"]
    assert answer["status"] == 413, answer
    assert answer["headers"].get("Content-Type") == "application/problem+json"
    problem = json.loads(answer["body"].decode())
    assert problem["status"] == 413 and problem["limit_bytes"] == 1024 * 1024
    assert answer["seconds"] < 10, answer["seconds"]  # was 31 s and a killed worker
    assert answer["sent"] < FIFTY_MB  # refused before the whole body was taken
    # the same worker still answers: nothing was killed
    assert _get(base, token, "/healthz") == 200
