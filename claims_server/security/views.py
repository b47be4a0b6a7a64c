"""HTTP endpoints: sign-in, sessions, TOTP, users and roles, API tokens, patient links, audit.

Thin views: parse, call a service in ``claims_server.security``, answer. Every endpoint
has an entry in ``claims_server.security.policy.POLICY``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, make_response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from claims_server.api_common.fields import StrictBoolean, StrictInteger
from claims_server.app import db_session
from claims_server.errors import ApiError, NotFound, Unprocessable
from claims_server.models import ApiToken, AuditEvent, Patient, Role, Statement, User
from claims_server.models.security import AuditAction
from claims_server.security import clock
from claims_server.security.audit import audit_event
from claims_server.security.authn import (
    MIN_PASSWORD_LENGTH,
    SESSION_COOKIE,
    AuthError,
    SecondFactorActive,
    SignedIn,
    TokenRequestError,
    begin_totp_enrolment,
    check_password_strength,
    confirm_totp_enrolment,
    create_api_token,
    create_user,
    login,
    revoke_user_sessions,
    sign_out,
    token_hash,
    verify_password,
)
from claims_server.security.ownership import get_owned, scope_query
from claims_server.security.patient_links import create_patient_link, verify_patient_link
from claims_server.security.policy import TOKEN_SCOPES
from claims_server.security.principal import client_address, current_principal
from claims_server.security.ratelimit import rate_limit

auth_blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth", description="Sign-in, sessions, tokens, users"
)
patient_blp = Blueprint(
    "patient_link", __name__, url_prefix="/api/v1/patient-link", description="Patient statement links"
)


class Unauthorized(ApiError):
    status, slug, title = 401, "unauthorized", "Authentication required"


def _ext() -> Any:
    return current_app.extensions["claims_security"]


def _auth_error(exc: AuthError) -> Unauthorized:
    return Unauthorized(exc.detail)


#: An authenticator code: 6-8 ASCII digits (what the check compares; anything else is a 422).
TOTP_CODE = validate.Regexp(r"^[0-9]{6,8}$", error="must be the 6-8 digits the authenticator app shows")


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 150))
    password = fields.String(required=True, validate=validate.Length(1, 1024), load_only=True)
    totp_code = fields.String(load_default=None, validate=TOTP_CODE, load_only=True)


#: A new password as the document states it: ``check_password_strength``'s minimum, and the
#: sign-in's maximum (a longer one could never sign in).
NEW_PASSWORD = validate.Length(
    MIN_PASSWORD_LENGTH, 1024, error=f"a password needs {MIN_PASSWORD_LENGTH} to 1024 characters"
)


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True)
    new_password = fields.String(required=True, load_only=True, validate=NEW_PASSWORD)


class CodeSchema(Schema):
    code = fields.String(required=True, validate=TOTP_CODE)


class UserCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 150))
    display_name = fields.String(required=True, validate=validate.Length(1, 150))
    role = fields.String(
        required=True, validate=validate.OneOf([r.value for r in Role if r is not Role.INTEGRATION])
    )
    password = fields.String(required=True, load_only=True, validate=NEW_PASSWORD)


class RoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))


class TokenCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    scopes = fields.List(
        # The enum documents the fixed list; the service refuses others (422 naming ``scopes``).
        fields.String(validate=validate.Length(1, 64), metadata={"enum": list(TOKEN_SCOPES)}),
        required=True,
        metadata={"description": "some of: " + ", ".join(TOKEN_SCOPES), "minItems": 1},
    )
    integration_name = fields.String(load_default=None, validate=validate.Length(1, 100))
    expires_at = fields.AwareDateTime(load_default=None)


class PatientLinkCreateSchema(Schema):
    patient_id = fields.String(required=True, validate=validate.Length(32, 32))


class PatientLinkVerifySchema(Schema):
    token = fields.String(required=True, validate=validate.Length(10, 100), load_only=True)
    birth_date = fields.Date(required=True, load_only=True)


# -- response bodies (documented in the OpenAPI document; the views build them as dicts)


class UserOutSchema(Schema):
    id = fields.String(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    totp_enabled = StrictBoolean(required=True)


class SignedInSchema(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    idle_timeout_minutes = StrictInteger(required=True)
    user = fields.Nested(UserOutSchema, required=True)


class WhoAmISchema(Schema):
    kind = fields.String(required=True)
    role = fields.String(allow_none=True, required=True)
    name = fields.String(allow_none=True, required=True)
    scopes = fields.List(fields.String(), required=True)


class TotpSetupSchema(Schema):
    secret = fields.String(required=True)
    provisioning_uri = fields.String(required=True)


class TokenOutSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    integration_name = fields.String(allow_none=True, required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    revoked_at = fields.DateTime(allow_none=True, required=True)


class TokenCreatedSchema(TokenOutSchema):
    token = fields.String(required=True, metadata={"description": "the secret; shown only in this answer"})


class TokenListSchema(Schema):
    items = fields.List(fields.Nested(TokenOutSchema), required=True)


class PatientLinkOutSchema(Schema):
    id = fields.String(required=True)
    token = fields.String(required=True)
    path = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class AuditArgsSchema(Schema):
    limit = StrictInteger(load_default=100, validate=validate.Range(1, 1000))


class AuditEventOutSchema(Schema):
    id = StrictInteger(required=True)
    occurred_at = fields.DateTime(required=True)
    action = fields.String(required=True)
    event_type = fields.String(required=True)
    entity_type = fields.String(allow_none=True, required=True)
    entity_id = fields.String(allow_none=True, required=True)
    actor_role = fields.String(allow_none=True, required=True)
    outcome = StrictInteger(required=True)
    request_id = fields.String(allow_none=True, required=True)


class AuditEventListSchema(Schema):
    items = fields.List(fields.Nested(AuditEventOutSchema), required=True)


class PatientSessionSchema(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class PatientStatementSchema(Schema):
    id = fields.String(required=True)
    statement_date = fields.Date(required=True)
    due_date = fields.Date(required=True)
    balance_cents = StrictInteger(required=True)
    state = fields.String(required=True)


class PatientStatementListSchema(Schema):
    items = fields.List(fields.Nested(PatientStatementSchema), required=True)


def _ok(
    blp: Blueprint, status: int, schema: type[Schema] | None = None, description: str | None = None
) -> Any:
    """Document a success answer the view builds itself (no re-serialisation)."""
    return blp.alt_response(status, schema=schema, description=description, success=True)


def _token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "name": row.name,
        "prefix": row.token_prefix,
        "scopes": row.scopes,
        "integration_name": row.integration_name,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.public_id,
        "username": user.username,
        "role": user.role.value,
        "totp_enabled": user.totp_enabled,
    }


def _current_user() -> User:
    principal = current_principal()
    user = db_session().get(User, principal.user_id) if principal.user_id else None
    if user is None:
        raise Unauthorized("sign in as a user first")
    return user


@auth_blp.route("/login", methods=["POST"], endpoint="login")
@_ok(auth_blp, 200, SignedInSchema, "signed in; the token is also set as the session cookie")
@auth_blp.arguments(LoginSchema)
def login_view(body: dict[str, Any]) -> Response:
    """Sign in with username, password and (when enrolled) a TOTP code."""
    ext = _ext()
    try:
        signed = sign_in(body["username"], body["password"], body.get("totp_code"))
    except AuthError as exc:
        raise _auth_error(exc) from None
    response = make_response(
        jsonify(
            token=signed.token,
            expires_at=signed.session.expires_at.isoformat(),
            idle_timeout_minutes=ext.settings.SESSION_IDLE_MINUTES,
            user=_user_json(signed.user),
        )
    )
    set_session_cookie(response, signed.token)
    return response


def set_session_cookie(response: Response, token: str) -> None:
    """The session cookie every sign-in sets (the API's and the staff workspace's): HttpOnly,
    SameSite=Strict, Secure in production, living as long as the session may."""
    settings = _ext().settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=settings.CLAIMS_ENV == "production",
        samesite="Strict",
        max_age=settings.SESSION_ABSOLUTE_HOURS * 3600,
    )


def sign_in(username: str, password: str, totp_code: str | None) -> SignedIn:
    """Check the credentials under the sign-in rate limit; ``AuthError`` when they fail."""
    with rate_limit("RATE_LIMIT_LOGIN"):
        ext = _ext()
        return login(
            db_session(),
            username=username,
            password=password,
            totp_code=totp_code,
            settings=ext.settings,
            now=clock.now(),
            source_address=client_address(),
        )


@auth_blp.route("/logout", methods=["POST"], endpoint="logout")
@_ok(auth_blp, 204, description="every session of the user ended")
def logout() -> Response:
    """End every session of the signed-in user."""
    session = db_session()
    sign_out(session, _current_user(), clock.now())
    session.commit()
    response = make_response("", 204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@auth_blp.route("/session", methods=["GET"], endpoint="whoami")
@_ok(auth_blp, 200, WhoAmISchema)
def whoami() -> dict[str, Any]:
    """Who the credentials stand for."""
    p = current_principal()
    return {"kind": p.kind.value, "role": p.role, "name": p.name, "scopes": sorted(p.scopes)}


@auth_blp.route("/password", methods=["POST"], endpoint="change_password")
@_ok(auth_blp, 204, description="changed; every session of the user ended")
@auth_blp.arguments(PasswordChangeSchema)
def change_password(body: dict[str, Any]) -> Response:
    """Change the password; every session of the user ends (sign in again)."""
    session = db_session()
    user = _current_user()
    if not verify_password(user.password_hash, body["current_password"]):
        raise Unauthorized("the current password is wrong")
    try:
        check_password_strength(body["new_password"])
    except ValueError as exc:
        raise Unprocessable(
            str(exc), errors=[{"field": "new_password", "location": "json", "message": str(exc)}]
        ) from None
    from claims_server.security.authn import hash_password

    now = clock.now()
    user.password_hash = hash_password(body["new_password"])
    user.password_changed_at = now
    revoked = revoke_user_sessions(session, user.id, now)
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="user.password_change",
        entity_type="user",
        entity_id=user.public_id,
        details={"sessions_revoked": revoked},
    )
    session.commit()
    return make_response("", 204)


@auth_blp.route("/totp/setup", methods=["POST"], endpoint="totp_setup")
@_ok(auth_blp, 200, TotpSetupSchema)
def totp_setup() -> dict[str, Any]:
    """Start TOTP enrolment: a new secret (stored encrypted), active once a code confirms it."""
    session = db_session()
    user = _current_user()
    try:
        uri = begin_totp_enrolment(session, user)
    except SecondFactorActive as exc:
        from claims_server.errors import Conflict

        raise Conflict(str(exc)) from None
    session.commit()
    return {"secret": user.totp_secret, "provisioning_uri": uri}


@auth_blp.route("/totp/confirm", methods=["POST"], endpoint="totp_confirm")
@_ok(auth_blp, 200, UserOutSchema)
@auth_blp.arguments(CodeSchema)
def totp_confirm(body: dict[str, Any]) -> dict[str, Any]:
    """Confirm TOTP enrolment with a current code; sign-ins then require a code."""
    session = db_session()
    user = _current_user()
    if not confirm_totp_enrolment(session, user, body["code"], clock.now()):
        raise Unprocessable(
            "the code does not match", errors=[{"field": "code", "location": "json", "message": "wrong code"}]
        )
    session.commit()
    return _user_json(user)


@auth_blp.route("/users", methods=["POST"], endpoint="create_user")
@_ok(auth_blp, 201, UserOutSchema)
@auth_blp.arguments(UserCreateSchema)
def create_user_view(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create a staff user (admin)."""
    session = db_session()
    if session.scalar(select(User.id).where(User.username == body["username"].strip())):
        from claims_server.errors import Conflict

        raise Conflict("that username is taken")
    try:
        user = create_user(
            session,
            username=body["username"],
            display_name=body["display_name"],
            role=Role(body["role"]),
            password=body["password"],
        )
    except ValueError as exc:
        raise Unprocessable(
            str(exc), errors=[{"field": "password", "location": "json", "message": str(exc)}]
        ) from None
    session.commit()
    return _user_json(user), 201


@auth_blp.route("/users/<user_id>/role", methods=["POST"], endpoint="change_role")
@_ok(auth_blp, 200, UserOutSchema)
@auth_blp.arguments(RoleSchema)
def change_role(body: dict[str, Any], user_id: str) -> dict[str, Any]:
    """Change a user's role (admin); their sessions end so the new role applies at once."""
    session = db_session()
    user = session.scalar(select(User).where(User.public_id == user_id))
    if user is None:
        raise NotFound("no user with that id")
    old = user.role.value
    user.role = Role(body["role"])
    revoke_user_sessions(session, user.id, clock.now())
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="user.role_change",
        entity_type="user",
        entity_id=user.public_id,
        details={"from": old, "to": user.role.value},
    )
    session.commit()
    return _user_json(user)


@auth_blp.route("/tokens", methods=["POST"], endpoint="create_token")
@_ok(auth_blp, 201, TokenCreatedSchema)
@auth_blp.arguments(TokenCreateSchema)
def create_token(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create an integration token (admin). The secret is in this answer only."""
    session = db_session()
    try:
        token, row = create_api_token(
            session,
            name=body["name"],
            scopes=body["scopes"],
            integration_name=body.get("integration_name"),
            owner_user_id=current_principal().user_id,
            expires_at=body.get("expires_at"),
            now=clock.now(),
        )
    except TokenRequestError as exc:
        raise Unprocessable(
            str(exc),
            errors=[
                {"field": exc.field, "location": "json", "rule": "token_request", "message": exc.message}
            ],
        ) from None
    session.commit()
    return {**_token_json(row), "token": token}, 201


@auth_blp.route("/tokens", methods=["GET"], endpoint="list_tokens")
@_ok(auth_blp, 200, TokenListSchema)
def list_tokens() -> dict[str, Any]:
    """Tokens the caller may see: all for an admin, its own for an integration."""
    stmt = scope_query(select(ApiToken).order_by(ApiToken.id), current_principal(), ApiToken)
    return {"items": [_token_json(t) for t in db_session().scalars(stmt)]}


@auth_blp.route("/tokens/<token_id>", methods=["GET"], endpoint="get_token")
@_ok(auth_blp, 200, TokenOutSchema)
def get_token(token_id: str) -> dict[str, Any]:
    return _token_json(get_owned(db_session(), ApiToken, token_id, current_principal()))


@auth_blp.route("/tokens/<token_id>", methods=["DELETE"], endpoint="revoke_token")
@_ok(auth_blp, 204, description="revoked (or it already was)")
def revoke_token(token_id: str) -> Response:
    """Revoke a token: refused from the very next request."""
    session = db_session()
    row = get_owned(session, ApiToken, token_id, current_principal())
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        audit_event(
            session,
            action=AuditAction.UPDATE,
            event_type="token.revoke",
            entity_type="api_token",
            entity_id=row.public_id,
        )
        session.commit()
    return make_response("", 204)


@auth_blp.route("/patient-links", methods=["POST"], endpoint="create_patient_link")
@_ok(auth_blp, 201, PatientLinkOutSchema)
@auth_blp.arguments(PatientLinkCreateSchema)
def create_patient_link_view(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Issue a one-time statement link for a patient. The token is in this answer only."""
    session = db_session()
    patient = get_owned(session, Patient, body["patient_id"], current_principal())
    issued = create_patient_link(
        session,
        patient,
        created_by_user_id=current_principal().user_id,
        settings=_ext().settings,
        now=clock.now(),
    )
    session.commit()
    # The patient pages (claims_server.portal) swap the token for a cookie on first use and
    # redirect to an address without it; request logs name the route, never the path.
    return {
        "id": issued.link.public_id,
        "token": issued.token,
        "path": f"/pay/l/{issued.token}",
        "expires_at": issued.link.expires_at.isoformat(),
    }, 201


@auth_blp.route("/audit-events", methods=["GET"], endpoint="audit_events")
@auth_blp.arguments(AuditArgsSchema, location="query")
@_ok(auth_blp, 200, AuditEventListSchema)
def audit_events(args: dict[str, Any]) -> dict[str, Any]:
    """The newest audit events (auditors, admins); reading the trail is itself audited."""
    session = db_session()
    limit = args["limit"]
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)).all()
    audit_event(
        session,
        action=AuditAction.READ,
        event_type="audit.read",
        entity_type="audit_events",
        details={"count": len(rows)},
    )
    session.commit()
    return {
        "items": [
            {
                "id": r.id,
                "occurred_at": r.occurred_at.isoformat(),
                "action": r.action.value,
                "event_type": r.event_type,
                "entity_type": r.entity_type,
                "entity_id": r.entity_id,
                "actor_role": r.actor_role,
                "outcome": r.outcome,
                "request_id": r.request_id,
            }
            for r in rows
        ]
    }


@patient_blp.route("/verify", methods=["POST"], endpoint="verify")
@_ok(patient_blp, 200, PatientSessionSchema)
@patient_blp.arguments(PatientLinkVerifySchema)
def verify(body: dict[str, Any]) -> dict[str, Any]:
    """Check the link and birth date; answer a patient session token."""
    with rate_limit("RATE_LIMIT_PATIENT_LINK"):
        try:
            token, link = verify_patient_link(
                db_session(),
                token_digest=token_hash(body["token"]),
                birth_date=body["birth_date"],
                now=clock.now(),
            )
        except AuthError as exc:
            raise _auth_error(exc) from None
    assert link.session_expires_at is not None
    return {"token": token, "expires_at": link.session_expires_at.isoformat()}


def _statement_json(s: Statement) -> dict[str, Any]:
    return {
        "id": s.public_id,
        "statement_date": s.statement_date.isoformat(),
        "due_date": s.due_date.isoformat(),
        "balance_cents": s.balance_cents,
        "state": s.state.value,
    }


@patient_blp.route("/statements", methods=["GET"], endpoint="statements")
@_ok(patient_blp, 200, PatientStatementListSchema)
def statements() -> dict[str, Any]:
    """The patient's own statements."""
    session = db_session()
    principal = current_principal()
    rows = session.scalars(
        scope_query(select(Statement).order_by(Statement.statement_date.desc()), principal, Statement)
    ).all()
    audit_event(
        session,
        action=AuditAction.READ,
        event_type="statement.list",
        entity_type="statement",
        details={"count": len(rows)},
    )
    session.commit()
    return {"items": [_statement_json(s) for s in rows]}


@patient_blp.route("/statements/<statement_id>", methods=["GET"], endpoint="statement")
@_ok(patient_blp, 200, PatientStatementSchema)
def statement(statement_id: str) -> dict[str, Any]:
    """One of the patient's statements; another patient's is 404."""
    session = db_session()
    row = get_owned(session, Statement, statement_id, current_principal())
    audit_event(
        session,
        action=AuditAction.READ,
        event_type="statement.read",
        entity_type="statement",
        entity_id=row.public_id,
        patient_id=row.patient_id,
    )
    session.commit()
    return _statement_json(row)
