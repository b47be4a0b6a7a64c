"""Sign-in (password and TOTP code on one form), TOTP enrolment, sign-out, session keep-alive.

The same credentials check, session and cookie as the API's ``/api/v1/auth/login``
(``claims_server.security.views.sign_in`` and ``set_session_cookie``). A staff user
without a confirmed second factor may only enrol it or sign out (the policy hook sends
every other page to enrolment; HIPAA 164.312(d)).
"""

from __future__ import annotations

import re

import segno
from flask import Response, current_app, flash, redirect, request, url_for
from flask import session as browser_session
from werkzeug.exceptions import TooManyRequests

from claims_server.app import db_session
from claims_server.security import clock
from claims_server.security.authn import (
    SESSION_COOKIE,
    AuthError,
    SecondFactorActive,
    begin_totp_enrolment,
    confirm_totp_enrolment,
    sign_out,
    totp_uri,
)
from claims_server.security.principal import current_principal
from claims_server.security.views import set_session_cookie, sign_in
from claims_server.ui.blueprint import bp, current_user, page, safe_next

_CODE = re.compile(r"^\d{6,8}$")


@bp.route("/", methods=["GET"], endpoint="home")
def home() -> Response:
    """The workspace's start: the dashboard once it exists, else the work queues."""
    target = "ui.dashboard" if "ui.dashboard" in current_app.view_functions else "ui.queues"
    return redirect(url_for(target))


@bp.route("/sign-in", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_page() -> Response:
    """The sign-in form; on success the session cookie and a redirect to ``next``."""
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_principal().is_staff:
            return redirect(next_path or url_for("ui.home"))
        return page("sign_in.html", next_path=next_path, errors={}, username="")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    code = request.form.get("totp_code", "").strip()
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "Enter your username."
    if not password:
        errors["password"] = "Enter your password."
    if code and not _CODE.match(code):
        errors["totp_code"] = "The code is the 6 digits your authenticator app shows."
    if not errors:
        try:
            signed = sign_in(username, password, code or None)
        except AuthError as exc:
            errors["_form"] = exc.detail[:1].upper() + exc.detail[1:] + "."
        except TooManyRequests:
            errors["_form"] = "Too many sign-in attempts from this address. Wait a minute and try again."
    if errors:
        return page("sign_in.html", 422, next_path=next_path, errors=errors, username=username)
    # A new browser session (and CSRF token) at sign-in: nothing from before carries over.
    browser_session.clear()
    target = next_path or url_for("ui.home")
    if not signed.user.totp_enabled:
        target = url_for("ui.enrol")
    response = redirect(target, 303)
    set_session_cookie(response, signed.token)
    return response


@bp.route("/sign-out", methods=["POST"], endpoint="sign_out")
def sign_out_page() -> Response:
    """End every session of the user; back to the sign-in page."""
    session = db_session()
    sign_out(session, current_user(), clock.now())
    session.commit()
    browser_session.clear()
    flash("You are signed out.", "success")
    response = redirect(url_for("ui.sign_in"), 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (made here: no third party sees the secret)."""
    return segno.make(uri, error="m").svg_inline(scale=4, title="QR code of the authenticator setup key")


@bp.route("/enrol", methods=["GET", "POST"], endpoint="enrol")
def enrol() -> Response:
    """Show the pending authenticator key (and its QR code); POST confirms it with a code."""
    session = db_session()
    user = current_user()
    if user.totp_enabled:
        return redirect(url_for("ui.home"))
    errors: dict[str, str] = {}
    if request.method == "POST":
        code = request.form.get("code", "").strip()
        if not _CODE.match(code):
            errors["code"] = "Enter the 6 digits your authenticator app shows."
        elif not user.totp_secret:
            errors["_form"] = "Set up the authenticator first."
        elif confirm_totp_enrolment(session, user, code, clock.now()):
            session.commit()
            flash("Your authenticator is set up. It asks for a code at every sign-in.", "success")
            return redirect(url_for("ui.home"), 303)
        else:
            errors["code"] = "That code does not match. Check the clock of your device and try the next code."
    uri = totp_uri(user) if user.totp_secret else None
    return page(
        "enrol.html",
        422 if errors else 200,
        uri=uri,
        secret=user.totp_secret if uri else None,
        qr_svg=_qr_svg(uri) if uri else None,
        errors=errors,
    )


@bp.route("/enrol/start", methods=["POST"], endpoint="enrol_start")
def enrol_start() -> Response:
    """Make a new authenticator key for the user (replaces a pending, never an active one)."""
    session = db_session()
    try:
        begin_totp_enrolment(session, current_user())
    except SecondFactorActive:
        return redirect(url_for("ui.home"), 303)
    session.commit()
    return redirect(url_for("ui.enrol"), 303)


@bp.route("/session/keepalive", methods=["GET"], endpoint="keepalive")
def keepalive() -> Response:
    """A cheap authenticated request: the policy hook's session check moves the idle timer."""
    return Response(status=204)
