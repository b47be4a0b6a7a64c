"""The ``ui`` blueprint and what every page shares: CSRF, refusals as pages, errors as pages.

- CSRF: every POST to ``/ui`` must echo the session's token (``{{ csrf_field() }}`` in each
  form; ``claims_server.security.csrf``), else a 400 page and nothing changes.
- Refusals: the central policy hook decides (deny by default); for ``/ui`` it lets
  :func:`render_refusal` draw the answer: signed out (or an expired session) goes to the
  sign-in page, keeping the path (public ids only, never a query string; for a form posted
  after the session ended, the page the form was on) in ``next``; a user without a second
  factor goes to enrolment; a role refusal is an HTML 403 page.
- Wrong method: a GET of a form's address under ``/ui`` is an HTML 405 page (the API keeps
  problem+json).
- Errors: a domain error (``ApiError``) a view lets through is a page with its message
  (the request's transaction was rolled back by ``mutation``); an unexpected one is a
  500 page quoting the request id, never a traceback.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RoutingNotFound

from claims_server.api_common.fields import cents_to_money
from claims_server.app import db_session
from claims_server.errors import ApiError, NotFound, problem
from claims_server.models import User
from claims_server.security import csrf, enforce
from claims_server.security.authn import SESSION_COOKIE
from claims_server.security.headers import page_headers
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal

log = logging.getLogger(__name__)

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: The main navigation: (label, endpoint). An entry shows once its endpoint exists, to the roles
#: the policy lets open it.
NAV: tuple[tuple[str, str], ...] = (
    ("Dashboard", "ui.dashboard"),
    ("Work queues", "ui.queues"),
    ("Appeals", "ui.appeals"),
    ("My follow-ups", "ui.followups"),
    ("Approvals", "ui.approvals"),
    ("Claims", "ui.claims"),
    ("Ready to send", "ui.send"),
    ("Batches", "ui.batches"),
    ("Remittances", "ui.remittances"),
    ("Unmatched", "ui.unmatched_list"),
    ("Credits", "ui.credits"),
    ("Files", "ui.files"),
    ("Patients", "ui.patients"),
    ("Fee schedule", "ui.fee_schedule"),
    ("Scheduler", "ui.scheduler"),
)

#: A path that may travel in ``next``: workspace paths made of public ids and words only.
_SAFE_NEXT = re.compile(r"/ui(/[A-Za-z0-9_-]+)*/?")


def safe_next(path: str | None) -> str | None:
    """``path`` when it is a workspace path without query or PHI-shaped parts, else None.

    ``fullmatch``: ``$`` would also match before a trailing newline, and a newline in the
    redirect's Location header is a 500 (or worse, a header injection).
    """
    return path if path and _SAFE_NEXT.fullmatch(path) else None


#: The workspace's CSP: scripts, styles and images from our origin only (images also as
#: ``data:``), no framing, forms post only to us. See claims_server/security/headers.py.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; img-src 'self' data:"
)
security_headers = page_headers(
    referrer_policy="same-origin", content_security_policy=CONTENT_SECURITY_POLICY
)
bp.after_request(security_headers)


def page(template: str, status: int = 200, **context: Any) -> Response:
    """Render ``ui/<template>`` with the layout's context as a response with ``status``."""
    return make_response(render_template(f"ui/{template}", **context), status)


def field_errors(exc: ApiError, aliases: dict[str, str] | None = None) -> dict[str, str]:
    """A domain error's messages by form field (``aliases`` maps a service's field path to the
    form's field name); messages for no field of the form go under ``"_form"``."""
    out: dict[str, str] = {}
    for error in exc.errors:
        name = str(error.get("field") or "")
        name = (aliases or {}).get(name, name) or "_form"
        out.setdefault(name, str(error.get("message") or exc.detail))
    if not out:
        out["_form"] = exc.detail
    return out


def current_user() -> User:
    """The signed-in staff user's row (the policy hook has already checked the session)."""
    user_id = current_principal().user_id
    user = db_session().get(User, user_id) if user_id is not None else None
    if user is None:
        raise NotFound("no signed-in user")
    return user


def _form_page() -> str | None:
    """For a form posted after the session ended: the page it was sent from (the Referer's path,
    same origin only; the layout's Referrer-Policy is ``same-origin``), so signing in returns
    there and ``static/drafts.js`` can put the typed text back. The POST itself is not replayed."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    return safe_next(parts.path)


def render_refusal(status: int, detail: str, reason: str) -> Response:
    """How the policy hook's 401/403 looks under ``/ui`` (the decision is the hook's)."""
    if status == 401:
        if reason == "credentials":
            flash("Your session has ended. Sign in again.", "error")
        target = safe_next(request.path) if request.method == "GET" else _form_page()
        response = redirect(url_for("ui.sign_in", next=target) if target else url_for("ui.sign_in"), 303)
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE)
        return response
    if reason == "mfa-enrolment":
        return redirect(url_for("ui.enrol"), 303)
    return page("error.html", 403, title="Not allowed", message=detail)


enforce.register_refusal_renderer(bp.url_prefix or "/ui", render_refusal)


def _csrf_refused(exc: csrf.CsrfError) -> Response:
    return page("error.html", 400, title="The form has expired", message=str(exc))


csrf.protect(bp, on_error=_csrf_refused)


@bp.errorhandler(ApiError)
def _domain_error(exc: ApiError) -> Response:
    titles = {404: "Not found", 409: "Not possible now", 422: "Not accepted"}
    messages = [e.get("message") for e in exc.errors if e.get("message")]
    return page(
        "error.html",
        exc.status,
        title=titles.get(exc.status, "Not done"),
        message=exc.detail,
        details=messages,
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    return page("error.html", status, title=exc.name, message=exc.description or exc.name)


@bp.app_errorhandler(RoutingNotFound)
def _unknown_path(exc: RoutingNotFound) -> Response:
    """An unknown path under ``/ui`` is an HTML page; elsewhere the API's problem+json 404.

    A path that matches no route has no blueprint, so ``bp.errorhandler`` never sees it;
    this app-wide handler for werkzeug's 404 decides by the path. A view's own ``NotFound``
    (``claims_server.errors``) is an ``ApiError``, not this one, and keeps its handler.
    """
    prefix = bp.url_prefix or "/ui"
    if request.path == prefix or request.path.startswith(prefix + "/"):
        # No blueprint matched, so the blueprint's after_request hook does not run: add its headers.
        return security_headers(
            page(
                "error.html",
                404,
                title="Page not found",
                message="There is no page at this address. It may have moved, or the link may be mistyped.",
            )
        )
    return problem(404, exc.description or "Not found")


def _page_above(path: str) -> str | None:
    """The workspace page a form-only address belongs to (``/ui/claims/X/void`` → ``/ui/claims/X``),
    when that address answers a GET; else None."""
    parent = safe_next(path.rstrip("/").rpartition("/")[0])
    if not parent:
        return None
    try:
        endpoint, _ = current_app.url_map.bind("").match(parent, method="GET")
    except HTTPException:
        return None
    return parent if endpoint.startswith("ui.") else None


@bp.app_errorhandler(MethodNotAllowed)
def _wrong_method(exc: MethodNotAllowed) -> Response:
    """A GET of a form's address under ``/ui`` (a bookmarked or reloaded POST) is an HTML page
    pointing back to the page with the form; elsewhere the API's problem+json 405 with ``Allow``.

    Like an unknown path, the method is refused while routing, before any blueprint is known,
    so only an app-wide handler sees it.
    """
    prefix = bp.url_prefix or "/ui"
    if request.path == prefix or request.path.startswith(prefix + "/"):
        back = _page_above(request.path)
        response = page(
            "error.html",
            405,
            title="This address is a form's, not a page",
            message="It only takes a form sent with a button from the workspace; nothing was changed. "
            + ("Go back to the page to use the form." if back else "Open the page from the menu."),
            back=back,
        )
        allowed = exc.valid_methods or ()
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return security_headers(response)
    headers = {"Allow": ", ".join(sorted(exc.valid_methods))} if exc.valid_methods else {}
    return problem(405, exc.description or "Method not allowed", headers=headers)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"request_id": g.get("request_id")})
    return page(
        "error.html",
        500,
        title="Something went wrong",
        message=f"Nothing was changed. Quote request id {g.get('request_id', '')} when reporting it.",
    )


def money(cents: int | None) -> str:
    """Cents as ``$1,234.56`` (``-$5.00``); empty for None."""
    if cents is None:
        return ""
    text = cents_to_money(cents)
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, frac = digits.partition(".")
    return f"{sign}${int(whole):,}.{frac}"


bp.add_app_template_filter(money, "money")


def money_text(text: str | None) -> str:
    """A decimal string of the API's documents (``"-100.00"``) shown as ``money`` shows cents
    (``-$100.00``, ``$1,234.56``); empty for None."""
    if text is None or text == "":
        return ""
    cents = Decimal(str(text)) * 100
    return money(int(cents)) if cents == cents.to_integral_value() else str(text)


bp.add_app_template_filter(money_text, "money_text")


def _may_open(endpoint: str, role: str | None) -> bool:
    rule = rule_for(endpoint)
    return rule is not None and (rule.public or role in rule.roles)


@bp.app_context_processor
def _layout_context() -> dict[str, Any]:
    if not request.blueprint or request.blueprint != "ui":
        return {}
    principal = current_principal()
    nav = [
        (label, endpoint)
        for label, endpoint in NAV
        if endpoint in current_app.view_functions and _may_open(endpoint, principal.role)
    ]
    settings = current_app.extensions["claims_server"].settings
    return {
        "ui_principal": principal if principal.is_staff else None,
        "ui_nav": nav,
        "ui_idle_minutes": settings.SESSION_IDLE_MINUTES,
    }
