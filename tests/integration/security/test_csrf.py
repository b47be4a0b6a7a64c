"""The CSRF guard of the server-rendered pages (claims_server.security.csrf)."""

from __future__ import annotations

import pytest
from flask import session as flask_session

from claims_server.security.csrf import CSRF_FIELD, CSRF_HEADER, CsrfError, check_csrf, csrf_field, csrf_token


def test_safe_methods_need_no_token(app):
    with app.test_request_context("/ui/", method="GET"):
        check_csrf()


def test_unsafe_request_without_a_session_token_is_refused(app):
    with (
        app.test_request_context("/ui/x", method="POST", data={CSRF_FIELD: "guess"}),
        pytest.raises(CsrfError, match="reload the page"),
    ):
        check_csrf()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_wrong_or_missing_token_is_refused(app, method):
    with app.test_request_context("/ui/x", method=method, data={CSRF_FIELD: "not-the-token"}):
        csrf_token()
        with pytest.raises(CsrfError):
            check_csrf()
    with app.test_request_context("/ui/x", method=method):
        csrf_token()
        with pytest.raises(CsrfError):
            check_csrf()


def test_the_session_token_passes_in_the_form_or_the_header(app):
    with app.test_request_context("/ui/x", method="POST"):
        token = csrf_token()
        assert token == csrf_token(), "one token per browser session"
        assert flask_session["_csrf"] == token
        field = str(csrf_field())
        assert f'name="{CSRF_FIELD}"' in field and token in field
    with app.test_request_context("/ui/x", method="POST", data={CSRF_FIELD: token}) as ctx:
        ctx.session["_csrf"] = token
        check_csrf()
    with app.test_request_context("/ui/x", method="POST", headers={CSRF_HEADER: token}) as ctx:
        ctx.session["_csrf"] = token
        check_csrf()


def test_session_cookie_is_lax_and_http_only(app):
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert "csrf_field" in app.jinja_env.globals
