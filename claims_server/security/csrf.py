"""CSRF protection for the server-rendered pages (the staff workspace and the patient pages).

Synchronizer-token pattern (OWASP CSRF Prevention Cheat Sheet): a random token lives in
Flask's signed session cookie; every form carries it as the hidden field ``csrf_token``
(``{{ csrf_field() }}`` in a template) and ``fetch()`` calls send it in ``X-CSRF-Token``.
A page blueprint calls ``protect(blueprint)``: each POST/PUT/PATCH/DELETE to it must echo
the token or is refused with 400 before the view runs, and nothing changes.

The JSON API under ``/api`` does not need this: it takes bearer tokens, its session cookie
is ``SameSite=Strict``, and it refuses bodies that are not JSON (a cross-site form cannot
send ``application/json`` without a CORS preflight, which the server never grants).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

from flask import Blueprint, Flask, request, session
from markupsafe import Markup, escape

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_SESSION_KEY = "_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfError(Exception):
    """The request did not carry this browser session's CSRF token."""


def csrf_token() -> str:
    """This browser session's token (made on first use)."""
    token = session.get(_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_KEY] = token
    return token


def csrf_field() -> Markup:
    """The hidden form field that carries the token."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token())}">')


def check_csrf() -> None:
    """Raise ``CsrfError`` unless an unsafe request echoes the session's token."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session.get(_SESSION_KEY)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        raise CsrfError(
            "the form is out of date or did not come from this site; reload the page and try again"
        )


def protect(blueprint: Blueprint, on_error: Callable[[CsrfError], object]) -> None:
    """Check the token before every view of ``blueprint``; ``on_error`` renders the refusal (400)."""

    @blueprint.before_request
    def _check() -> object | None:
        try:
            check_csrf()
        except CsrfError as exc:
            return on_error(exc)
        return None


def init_app(app: Flask) -> None:
    """Templates get ``csrf_token()`` and ``csrf_field()``; the Flask session cookie is Lax and
    HttpOnly, and Secure when ``CLAIMS_ENV=production`` (it carries the CSRF token and the patient
    pages' pending link, which must never travel over plain HTTP)."""
    from claims_server.app import state

    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if state(app).settings.CLAIMS_ENV == "production":
        app.config["SESSION_COOKIE_SECURE"] = True
    app.jinja_env.globals.update(csrf_token=csrf_token, csrf_field=csrf_field)
