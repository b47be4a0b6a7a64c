"""gunicorn settings for ``claims-server serve`` (``gunicorn -c python:claims_server.gunicorn_conf``).

The errors gunicorn answers itself, before the application sees the request (a request
line over ``limit_request_line``: 414; too many or too large headers: 431; a malformed
request line or header: 400), are ``application/problem+json`` like every other API
error, instead of gunicorn's HTML page. The body never repeats the refused request line
or header (it may carry a query string, and so PHI); it names the rule that refused it.

Each worker, once it has loaded the app, starts the in-process runner of the periodic jobs
when ``SCHEDULER`` is ``in-process`` (``post_worker_init``; claims_server.scheduler.background).
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util

from claims_server.errors import PROBLEM_BASE, PROBLEM_JSON

#: gunicorn's own limits, stated so the OpenAPI document's bounds stay inside them.
limit_request_line = 8190  # gunicorn's maximum; the longest documented query fits
limit_request_fields = 100
limit_request_field_size = 8190
#: No control socket (gunicorn 25+): its default path is per user, not per server, so two
#: servers on one host (tests, or two instances) would fight over it, and nothing here uses it.
control_socket_disable = True

_SLUGS = {400: "bad-request", 403: "forbidden", 414: "uri-too-long", 417: "expectation-failed"}
_SLUGS |= {431: "header-fields-too-large", 500: "internal-error", 501: "not-implemented"}


def problem_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` answering with problem+json (``mesg`` is not echoed)."""
    body = json.dumps(
        {
            "type": PROBLEM_BASE + _SLUGS.get(status_int, "bad-request"),
            "title": reason,
            "status": status_int,
            "detail": f"the HTTP server refused the request before it reached the application: {reason}",
            "instance": None,
            "request_id": None,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = problem_error


def post_worker_init(worker: Any) -> None:
    """After the fork, in each worker: the scheduler thread (its lease makes each job run once).
    Imported here, not above: gunicorn's master process loads this file and stays without the app."""
    from flask import Flask

    from claims_server.scheduler.background import start_for_app

    if isinstance(worker.wsgi, Flask):
        start_for_app(worker.wsgi)
