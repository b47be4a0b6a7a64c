"""Authentication: passwords (argon2id), TOTP, server-side sessions, API tokens, lockout.

HIPAA 164.312(d) (person or entity authentication) and 164.312(a)(2)(iii) (automatic
logoff): sessions end after ``SESSION_IDLE_MINUTES`` without a request and
``SESSION_ABSOLUTE_HOURS`` after sign-in, checked on the server at every request
against the injectable clock. Logout and a password change revoke every session of
the user. Failed sign-ins are counted per username (hashed) in Redis when
``REDIS_URL`` is set, so a restart does not reset them, else in process memory; the
lock itself is also stored on the user row.

Secrets are stored only as hashes: argon2id for passwords, SHA-256 for the random
256-bit session, API and patient tokens (a hash suffices for high-entropy tokens and
keeps the per-request lookup an index hit).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
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


# --- failure counters -------------------------------------------------------------------


class CounterStore(Protocol):
    def incr(self, key: str, ttl_seconds: int) -> int: ...

    def reset(self, key: str) -> None: ...


class MemoryCounterStore:
    """Per-process counters with expiry (embedded default)."""

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._data: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()

    def incr(self, key: str, ttl_seconds: int) -> int:
        now = self._clock()
        with self._lock:
            count, expires = self._data.get(key, (0, now))
            if expires <= now:
                count = 0
            count += 1
            self._data[key] = (count, now + timedelta(seconds=ttl_seconds))
            return count

    def reset(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class RedisCounterStore:
    """Counters in Redis: they survive restarts and are shared by every worker process."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)

    def incr(self, key: str, ttl_seconds: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, ttl_seconds)
        count, _ = pipe.execute()
        return int(count)

    def reset(self, key: str) -> None:
        self._redis.delete(key)


def failure_key(username: str) -> str:
    # Usernames are hashed so the counter store never holds them in clear.
    return "claims:login-failures:" + hashlib.sha256(username.strip().casefold().encode()).hexdigest()


# --- sign in / out ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    token: str
    user: User
    session: UserSession


def _user_principal(user: User) -> Principal:
    return Principal(PrincipalKind.USER, role=user.role.value, user_id=user.id, name=user.username)


def login(
    session: Session,
    *,
    username: str,
    password: str,
    totp_code: str | None,
    settings: Settings,
    counters: CounterStore,
    now: datetime,
    source_address: str | None,
) -> SignedIn:
    """Check the credentials and open a session; audit success and failure; commit."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    key = failure_key(username)
    reason: str | None = None
    if user is not None and user.locked_until is not None and user.locked_until > now:
        reason = "locked"
    password_ok = verify_password(user.password_hash if user else None, password)
    if reason is None:
        if user is None or not user.active or user.role is Role.INTEGRATION:
            reason = "unknown_or_inactive"
        elif not password_ok:
            reason = "password"
        elif user.totp_enabled and not verify_totp(user.totp_secret, totp_code, now):
            reason = "totp"
    if reason is not None:
        count = counters.incr(key, settings.LOCKOUT_MINUTES * 60) if reason != "locked" else 0
        locked = False
        if user is not None and count >= settings.LOGIN_MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=settings.LOCKOUT_MINUTES)
            user.failed_login_count = count
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
    counters.reset(key)
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
    """Activate the pending TOTP secret when ``code`` matches it; False (nothing changes) otherwise."""
    if not verify_totp(user.totp_secret, code, now):
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


def verify_totp(secret: str | None, code: str | None, now: datetime) -> bool:
    """RFC 6238 code check, one 30 s step of drift either way."""
    if not secret or not code:
        return False
    return pyotp.TOTP(secret).verify(code.strip(), for_time=now, valid_window=1)


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


def create_api_token(
    session: Session,
    *,
    name: str,
    scopes: list[str],
    integration_name: str | None = None,
    owner_user_id: int | None = None,
    expires_at: datetime | None = None,
    role: Role = Role.INTEGRATION,
) -> tuple[str, ApiToken]:
    """A new API token: the secret is returned once and stored only as its hash."""
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
