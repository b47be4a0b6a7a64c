"""RFC 9457 problem details for every API error.

Every error an API client can see is ``application/problem+json`` with ``type``,
``title``, ``status``, ``detail`` and the request id; validation errors add a list of
``errors`` naming the field and the rule. Unexpected exceptions are logged with their
traceback under the request id and answered with a generic 500: never a traceback
or a driver message (which can quote PHI) in the response.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://claims-server.dev/problems/"
#: The most field errors one problem lists (the rest are counted in ``errors_omitted``).
MAX_REPORTED_ERRORS = 100


class ApiError(Exception):
    """A domain error a service raises; the view layer turns it into problem+json."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class NotFound(ApiError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, slug, title = 409, "conflict", "Conflict"


class Unprocessable(ApiError):
    status, slug, title = 422, "unprocessable", "Unprocessable content"


_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable", "Unprocessable content"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("unavailable", "Service unavailable"),
}


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    default_slug, default_title = _SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
        "request_id": getattr(g, "request_id", None),
    }
    if errors:
        # Every entry says what is wrong in words (the OpenAPI Problem schema requires ``message``).
        body["errors"] = [
            {**e, "message": e.get("message") or e.get("rule") or detail} if isinstance(e, dict) else e
            for e in errors[:MAX_REPORTED_ERRORS]
        ]
        if len(errors) > MAX_REPORTED_ERRORS:  # bounded: 10,000 bad items are not a megabyte answer
            body["errors_omitted"] = len(errors) - MAX_REPORTED_ERRORS
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _validation_errors(data: Any) -> list[dict[str, Any]]:
    """Flatten webargs/marshmallow messages into ``[{"field", "location", "message"}]``."""
    messages = (data or {}).get("messages") if isinstance(data, dict) else None
    out: list[dict[str, Any]] = []

    def walk(node: Any, path: list[str], location: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                walk(sub, [*path, str(key)], location)
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            for message in node:
                out.append({"field": ".".join(path) or None, "location": location, "message": message})
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, [*path, str(i)], location)
        else:
            out.append({"field": ".".join(path) or None, "location": location, "message": str(node)})

    if isinstance(messages, dict):
        for location, node in messages.items():
            walk(node, [], location)
    return out


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return problem(exc.status, exc.detail, slug=exc.slug, title=exc.title, errors=exc.errors, **exc.extra)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        # The request's own limit (set per content type by api_common.limits), else the app's.
        limit = request.max_content_length if request else app.config.get("MAX_CONTENT_LENGTH")
        return problem(413, f"the request body exceeds the limit of {limit} bytes", limit_bytes=limit)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        data = getattr(exc, "data", None)
        errors = _validation_errors(data)
        detail = exc.description or _SLUGS.get(status, ("", "Error"))[1]
        if status == 422 and errors:
            detail = "the request has invalid fields"
        headers = {}
        if status == 405 and exc.get_response().headers.get("Allow"):
            headers["Allow"] = exc.get_response().headers["Allow"]
        return problem(status, detail, errors=errors or None, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc, extra={"request_id": getattr(g, "request_id", None)})
        return problem(500, "an unexpected error occurred; quote the request id when reporting it")
