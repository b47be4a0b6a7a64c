"""The central before_request hook: authenticate, then apply the policy table (deny by default).

Order for every request: the endpoint's rule (none: 403, whatever the caller); the
credentials (bearer token or session cookie; bad or expired: 401); the role (not in
the rule: 403, audited as a permission denial); for integration tokens the scope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, g, request

from claims_server.errors import problem
from claims_server.models.security import AuditAction, AuditOutcome
from claims_server.security import clock
from claims_server.security.audit import audit_event
from claims_server.security.authn import SESSION_COOKIE, AuthError, authenticate, credentials
from claims_server.security.policy import INTEGRATION, rule_for
from claims_server.security.principal import ANONYMOUS, Principal, PrincipalKind

log = logging.getLogger(__name__)


#: A refusal's renderer: (status, detail, reason) -> the response. The decision is taken here
#: (deny by default); a renderer only chooses how the refusal looks (an HTML page, a redirect
#: to the sign-in form) for the paths under its prefix.
RefusalRenderer = Callable[[int, str, str], Response]
_RENDERERS: dict[str, RefusalRenderer] = {}


def register_refusal_renderer(path_prefix: str, renderer: RefusalRenderer) -> None:
    """Render 401/403 refusals of requests under ``path_prefix`` with ``renderer`` (not problem+json)."""
    _RENDERERS[path_prefix.rstrip("/") + "/"] = renderer


def _renderer_for(path: str) -> RefusalRenderer | None:
    for prefix, renderer in _RENDERERS.items():
        if path.startswith(prefix) or path + "/" == prefix:
            return renderer
    return None


def _deny(status: int, detail: str, principal: Principal, reason: str) -> Response:
    from claims_server.app import state

    if status == 403:
        factory = state().session_factory
        with factory() as session:
            audit_event(
                session,
                action=AuditAction.EXECUTE,
                event_type="access.denied",
                entity_type="endpoint",
                entity_id=(request.endpoint or "")[:64],
                outcome=AuditOutcome.MINOR_FAILURE,
                details={"reason": reason, "method": request.method},
            )
            session.commit()
    renderer = _renderer_for(request.path)
    if renderer is not None:
        return renderer(status, detail, reason)
    headers = {"WWW-Authenticate": 'Bearer realm="claims-server"'} if status == 401 else None
    return problem(status, detail, headers=headers)


def refuse(detail: str, reason: str = "role") -> Response:
    """A 403 decided in a view because the rule depends on the row (a claim's state).

    Audited (``access.denied``) and rendered like the policy hook's own refusals.
    """
    return _deny(403, detail, g.get("principal", ANONYMOUS), reason)


#: What a staff user who has not yet confirmed a TOTP second factor may do: enrol it,
#: see who they are, change the password, sign out. Everything else (every PHI route)
#: needs the second factor (HIPAA 164.312(d); the 2025 proposed rule makes MFA mandatory).
MFA_ENROLMENT_ENDPOINTS = frozenset(
    {
        "auth.totp_setup",
        "auth.totp_confirm",
        "auth.whoami",
        "auth.logout",
        "auth.change_password",
        # the staff workspace's enrolment page and sign-out (claims_server.ui.auth)
        "ui.enrol",
        "ui.enrol_start",
        "ui.sign_out",
    }
)


def enforce_policy() -> Response | None:
    """before_request: set ``g.principal`` or answer 401/403."""
    from claims_server.app import state

    g.principal = ANONYMOUS
    if request.endpoint is None:
        return None  # routing failed: Flask answers 404/405
    rule = rule_for(request.endpoint)
    token = credentials(request.headers.get("Authorization"), request.cookies.get(SESSION_COOKIE))
    principal = ANONYMOUS
    if token is not None:
        app_state = state()
        try:
            with app_state.session_factory() as session:
                principal = authenticate(session, token, app_state.settings, clock.now())
        except AuthError as exc:
            if rule is not None and rule.public:
                return None
            return _deny(401, exc.detail, ANONYMOUS, "credentials")
    g.principal = principal
    if rule is None:
        log.warning(
            "refused a request to an endpoint with no policy entry", extra={"endpoint": request.endpoint}
        )
        return _deny(403, "this endpoint has no access policy", principal, "no-policy")
    if rule.public:
        return None
    if principal.kind is PrincipalKind.ANONYMOUS:
        return _deny(401, "authentication required", principal, "anonymous")
    if principal.role not in rule.roles:
        return _deny(403, "your role may not use this endpoint", principal, "role")
    if principal.role == INTEGRATION and rule.scope and not principal.has_scope(rule.scope):
        return _deny(403, f"the API token lacks the scope {rule.scope}", principal, "scope")
    if (
        principal.kind is PrincipalKind.USER
        and not principal.second_factor
        and request.endpoint not in MFA_ENROLMENT_ENDPOINTS
    ):
        return _deny(
            403,
            "enrol a second factor first: POST /api/v1/auth/totp/setup, then /api/v1/auth/totp/confirm",
            principal,
            "mfa-enrolment",
        )
    return None


def _first_hook() -> Response | None:
    """Runs before every other before_request hook: nobody learns anything (not even a 415)
    before authenticating. Sets the request id early so a refusal carries one."""
    from claims_server.app import assign_request_id

    assign_request_id()
    return enforce_policy()


def register(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _first_hook)
