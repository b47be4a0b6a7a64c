"""Authentication: passwords (argon2id), TOTP, server-side sessions, API tokens, lockout.

HIPAA 164.312(d) (person or entity authentication) and 164.312(a)(2)(iii) (automatic
logoff): sessions end after ``SESSION_IDLE_MINUTES`` without a request and
``SESSION_ABSOLUTE_HOURS`` after sign-in, checked on the server at every request
against the injectable clock. Logout and a password change revoke every session of
the user. Sign-in attempts are counted on the user row by one conditional UPDATE
before the password is checked (``reserve_login_attempt``), so every worker shares the
count, a restart keeps it, and concurrent attempts cannot overshoot
``LOGIN_MAX_FAILURES``; a TOTP code is accepted once (``use_totp``: the last used time
step is kept on the user row).

Secrets are stored only as hashes: argon2id for passwords, SHA-256 for the random
256-bit session, API and patient tokens (a hash suffices for high-entropy tokens and
keeps the per-request lookup an index hit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from claims_server.config import Settings
from claims_server.models.security import (
    ApiToken,
    AuditAction,
    AuditOutcome,
    PatientAccessLink,
    Role,
    User,
    UserSession,
)
from claims_server.security.audit import audit_event
from claims_server.security.principal import PATIENT_ROLE, Principal, PrincipalKind, acting_as

SESSION_PREFIX = "css_"
TOKEN_PREFIX = "cst_"
PATIENT_PREFIX = "csp_"
LINK_PREFIX = "csl_"
SESSION_COOKIE = "claims_session"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# Verified when the username is unknown, so the response time does not reveal it.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(Exception):
    """Authentication failed; ``detail`` is safe to show (no hint which part was wrong)."""

    def __init__(self, detail: str, *, status: int = 401) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    check_password_strength(password)
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- sign in / out ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    token: str
    user: User
    session: UserSession


def _user_principal(user: User) -> Principal:
    return Principal(PrincipalKind.USER, role=user.role.value, user_id=user.id, name=user.username)


def reserve_login_attempt(session: Session, user: User, settings: Settings, now: datetime) -> int | None:
    """Count one sign-in attempt of ``user`` atomically, before anything is checked; its number.

    One conditional UPDATE of the user row: the count rises only while it is below
    ``LOGIN_MAX_FAILURES`` and no lock is active (a lock that has run out starts the count
    again at 1), ``RETURNING`` the new count. Concurrent attempts queue on the row, so at
    most ``LOGIN_MAX_FAILURES`` passwords are checked per lock period, whatever the number
    of workers. None: the account is locked (nothing is checked).
    """
    expired_lock = User.locked_until.is_not(None) & (User.locked_until <= now)
    count = session.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.locked_until.is_(None) & (User.failed_login_count < settings.LOGIN_MAX_FAILURES))
            | expired_lock,
        )
        .values(
            failed_login_count=case((expired_lock, 1), else_=User.failed_login_count + 1),
            locked_until=None,
        )
        .returning(User.failed_login_count)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.expire(user, ["failed_login_count", "locked_until"])
    return count


def login(
    session: Session,
    *,
    username: str,
    password: str,
    totp_code: str | None,
    settings: Settings,
    now: datetime,
    source_address: str | None,
) -> SignedIn:
    """Check the credentials and open a session; audit success and failure; commit.

    The attempt is counted (``reserve_login_attempt``) before the password is verified, and
    a TOTP code is accepted once (``use_totp``): both are single conditional UPDATEs.
    """
    user = session.scalar(select(User).where(User.username == username.strip()))
    reason: str | None = None
    attempt: int | None = None
    if user is None or not user.active or user.role is Role.INTEGRATION:
        verify_password(None, password)  # the same time as a real check
        reason = "unknown_or_inactive"
    else:
        attempt = reserve_login_attempt(session, user, settings, now)
        if attempt is None:
            verify_password(None, password)
            reason = "locked"
        elif not verify_password(user.password_hash, password):
            reason = "password"
        elif user.totp_enabled and not use_totp(session, user, totp_code, now):
            reason = "totp"
    if reason is not None:
        locked = False
        if user is not None and attempt is not None and attempt >= settings.LOGIN_MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=settings.LOCKOUT_MINUTES)
            locked = True
        actor = (
            _user_principal(user)
            if user is not None
            else Principal(PrincipalKind.ANONYMOUS, name="anonymous")
        )
        with acting_as(actor):
            audit_event(
                session,
                action=AuditAction.EXECUTE,
                event_type="login.failure",
                entity_type="user" if user else None,
                entity_id=user.public_id if user else None,
                outcome=AuditOutcome.MINOR_FAILURE,
                details={"reason": reason, "locked": locked},
            )
        session.commit()
        raise AuthError("sign-in failed: wrong username, password or code, or the account is locked")
    assert user is not None
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    token = new_token(SESSION_PREFIX)
    row = UserSession(
        user=user,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.SESSION_ABSOLUTE_HOURS),
        source_address=source_address,
    )
    session.add(row)
    with acting_as(_user_principal(user)):
        audit_event(
            session,
            action=AuditAction.EXECUTE,
            event_type="login.success",
            entity_type="user",
            entity_id=user.public_id,
        )
    session.commit()
    return SignedIn(token, user, row)


def revoke_user_sessions(session: Session, user_id: int, now: datetime) -> int:
    """Revoke every open session of a user (logout, password change, role change)."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount or 0


def sign_out(session: Session, user: User, now: datetime) -> int:
    """Revoke every session of ``user`` and audit the logout (the caller commits)."""
    revoked = revoke_user_sessions(session, user.id, now)
    audit_event(
        session,
        action=AuditAction.EXECUTE,
        event_type="logout",
        entity_type="user",
        entity_id=user.public_id,
        details={"sessions_revoked": revoked},
    )
    return revoked


class SecondFactorActive(Exception):
    """TOTP enrolment refused: the user's factor is already active."""


def totp_uri(user: User) -> str:
    """The otpauth:// URI of the user's (pending or active) TOTP secret, for an authenticator app."""
    return pyotp.TOTP(user.totp_secret or "").provisioning_uri(
        name=user.username, issuer_name="claims-server"
    )


def begin_totp_enrolment(session: Session, user: User) -> str:
    """A new TOTP secret (stored encrypted, inactive until a code confirms it); its otpauth URI.

    Replacing an active factor from a session would let a stolen session switch MFA off for
    every later sign-in, so an active factor refuses (``SecondFactorActive``); an
    administrator resets it instead. The caller commits.
    """
    if user.totp_enabled:
        raise SecondFactorActive("a second factor is already active for this user")
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled = False
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="user.totp_setup",
        entity_type="user",
        entity_id=user.public_id,
    )
    return totp_uri(user)


def confirm_totp_enrolment(session: Session, user: User, code: str | None, now: datetime) -> bool:
    """Activate the pending TOTP secret when ``code`` matches it (and was not used before);
    False (nothing changes) otherwise."""
    if not use_totp(session, user, code, now):
        return False
    user.totp_enabled = True
    audit_event(
        session,
        action=AuditAction.UPDATE,
        event_type="user.totp_enable",
        entity_type="user",
        entity_id=user.public_id,
    )
    return True


def totp_step(secret: str | None, code: str | None, now: datetime) -> int | None:
    """The RFC 6238 time step ``code`` belongs to (one 30 s step of drift either way), or None."""
    code = (code or "").strip()
    # ASCII digits only: compare_digest raises TypeError on non-ASCII str (a 500 before).
    if not secret or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current + 1, current, current - 1):  # the newest match first
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def use_totp(session: Session, user: User, code: str | None, now: datetime) -> bool:
    """Accept ``code`` for ``user`` once: its time step must be after the last one used.

    One conditional UPDATE (``totp_last_step = :step WHERE totp_last_step IS NULL OR
    totp_last_step < :step``): of two sign-ins racing with the same code exactly one
    wins, and a code (or an older one) seen once is refused from then on.
    """
    step = totp_step(user.totp_secret, code, now)
    if step is None:
        return False
    won = session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.expire(user, ["totp_last_step"])
    return won == 1


# --- per-request authentication ------------------------------------------------------------


def credentials(authorization: str | None, cookie: str | None) -> str | None:
    """The bearer token of the request, else the session cookie."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    return cookie or None


def authenticate(session: Session, token: str, settings: Settings, now: datetime) -> Principal:
    """The principal a token stands for; ``AuthError`` when it is unknown, revoked or expired."""
    digest = token_hash(token)
    if token.startswith(SESSION_PREFIX):
        row = session.scalar(select(UserSession).where(UserSession.token_hash == digest))
        if row is None or row.revoked_at is not None or not row.user.active:
            raise AuthError("the session is not valid; sign in again")
        idle = timedelta(minutes=settings.SESSION_IDLE_MINUTES)
        if now >= row.expires_at or now - row.last_seen_at > idle:
            row.revoked_at = now
            session.commit()
            raise AuthError("the session has expired; sign in again")
        row.last_seen_at = now
        session.commit()
        user = row.user
        return Principal(
            PrincipalKind.USER,
            role=user.role.value,
            user_id=user.id,
            session_id=row.id,
            name=user.username,
            second_factor=bool(user.totp_enabled),
        )
    if token.startswith(TOKEN_PREFIX):
        api = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if api is None or api.revoked_at is not None:
            raise AuthError("the API token is not valid")
        if api.expires_at is not None and now >= api.expires_at:
            raise AuthError("the API token has expired")
        if api.owner is not None and not api.owner.active:
            raise AuthError("the API token's owner is inactive")
        if api.last_used_at is None or now - api.last_used_at > timedelta(minutes=1):
            api.last_used_at = now
            session.commit()
        return Principal(
            PrincipalKind.TOKEN,
            role=api.role.value,
            token_id=api.id,
            user_id=api.owner_user_id,
            scopes=frozenset(api.scopes or ()),
            integration_name=api.integration_name or api.name,
            name=f"token:{api.token_prefix}",
        )
    if token.startswith(PATIENT_PREFIX):
        link = session.scalar(select(PatientAccessLink).where(PatientAccessLink.session_token_hash == digest))
        if link is None or link.revoked_at is not None or link.session_expires_at is None:
            raise AuthError("the link session is not valid")
        idle = timedelta(minutes=settings.PATIENT_SESSION_MINUTES)
        last = link.session_last_seen_at or link.used_at or now
        if now >= link.session_expires_at or now - last > idle:
            raise AuthError("the link session has expired; open the link again")
        link.session_last_seen_at = now
        session.commit()
        return Principal(
            PrincipalKind.PATIENT,
            role=PATIENT_ROLE,
            patient_id=link.patient_id,
            link_id=link.id,
            name=f"patient-link:{link.public_id}",
        )
    raise AuthError("unrecognised credentials")


class TokenRequestError(ValueError):
    """A token request names an unknown scope or an expiry that is not in the future."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_token_request(scopes: list[str], expires_at: datetime | None, now: datetime) -> None:
    """Refuse (``TokenRequestError`` naming the field) scopes outside ``policy.TOKEN_SCOPES``,
    no scope at all, and an expiry at or before ``now`` (a naive expiry is read as UTC)."""
    from claims_server.security.policy import TOKEN_SCOPES

    unknown = sorted(set(scopes) - set(TOKEN_SCOPES))
    if unknown:
        raise TokenRequestError(
            "scopes", f"unknown scope(s) {', '.join(unknown)}; use some of {', '.join(TOKEN_SCOPES)}"
        )
    if not scopes:
        raise TokenRequestError("scopes", f"name at least one of {', '.join(TOKEN_SCOPES)}")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at <= now:
            raise TokenRequestError("expires_at", "must be in the future")


def create_api_token(
    session: Session,
    *,
    name: str,
    scopes: list[str],
    integration_name: str | None = None,
    owner_user_id: int | None = None,
    expires_at: datetime | None = None,
    role: Role = Role.INTEGRATION,
    now: datetime | None = None,
) -> tuple[str, ApiToken]:
    """A new API token: the secret is returned once and stored only as its hash.

    Scopes come from the fixed list ``policy.TOKEN_SCOPES`` and an expiry must lie in the
    future (``check_token_request``; ``now`` defaults to the security clock).
    """
    from claims_server.security import clock

    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    check_token_request(scopes, expires_at, now or clock.now())
    token = new_token(TOKEN_PREFIX)
    row = ApiToken(
        name=name,
        token_hash=token_hash(token),
        token_prefix=token[:12],
        scopes=sorted(set(scopes)),
        role=role,
        owner_user_id=owner_user_id,
        integration_name=integration_name or name,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="token.create",
        entity_type="api_token",
        entity_id=row.public_id,
        details={"scopes": row.scopes},
    )
    return token, row


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str | None,
    email: str | None = None,
) -> User:
    """A staff user (argon2id password) or an integration owner (no password)."""
    user = User(
        username=username.strip(),
        display_name=display_name,
        email=email,
        role=role,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    audit_event(
        session,
        action=AuditAction.CREATE,
        event_type="user.create",
        entity_type="user",
        entity_id=user.public_id,
        details={"role": role.value},
    )
    return user


def open_session(session: Session, user: User, settings: Settings, now: datetime) -> str:
    """A session token for ``user`` without a password check (fixtures, SSO later)."""
    token = new_token(SESSION_PREFIX)
    session.add(
        UserSession(
            user=user,
            token_hash=token_hash(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.SESSION_ABSOLUTE_HOURS),
        )
    )
    session.flush()
    return token
