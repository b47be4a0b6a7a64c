"""Who is acting: a staff user (session), an integration (API token), a patient (link), or the system.

``current_principal()`` is what services and ``audit_event`` ask. In a request the
central before_request hook (``claims_server.security.enforce``) sets it; in CLI
commands and Celery tasks it is ``SYSTEM`` unless code runs inside ``acting_as(...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

from flask import g, has_request_context, request

from claims_server.models.security import Role


class PrincipalKind(StrEnum):
    USER = "user"
    TOKEN = "token"
    PATIENT = "patient"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


#: The role of a patient who came in through a statement link (never a ``users`` row).
PATIENT_ROLE = "patient"
#: Every role the policy table may name.
ALL_ROLES: tuple[str, ...] = (*(r.value for r in Role), PATIENT_ROLE)
#: Staff roles (people with accounts).
STAFF_ROLES: frozenset[str] = frozenset(
    {Role.BILLER.value, Role.BILLING_SUPERVISOR.value, Role.AUDITOR.value, Role.ADMIN.value}
)


@dataclass(frozen=True)
class Principal:
    """The actor of a request or job, with what the audit trail and ownership checks need."""

    kind: PrincipalKind
    role: str | None = None
    user_id: int | None = None
    token_id: int | None = None
    patient_id: int | None = None
    session_id: int | None = None
    link_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    integration_name: str | None = None
    name: str = "system"
    #: For staff users: has a confirmed TOTP second factor. Staff without one may only
    #: enrol it (or sign out); see ``enforce.MFA_ENROLMENT_ENDPOINTS``.
    second_factor: bool = True

    @property
    def is_authenticated(self) -> bool:
        return self.kind is not PrincipalKind.ANONYMOUS

    @property
    def is_staff(self) -> bool:
        return self.kind is PrincipalKind.USER and self.role in STAFF_ROLES

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


SYSTEM = Principal(PrincipalKind.SYSTEM, role="system", name="system")
ANONYMOUS = Principal(PrincipalKind.ANONYMOUS, role=None, name="anonymous")

_acting: ContextVar[Principal | None] = ContextVar("claims_server_principal", default=None)


def current_principal() -> Principal:
    """The principal of the current request, else the one set by ``acting_as``, else SYSTEM."""
    override = _acting.get()
    if override is not None:
        return override
    if has_request_context():
        return g.get("principal", ANONYMOUS)
    return SYSTEM


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run a block (a task, a CLI command) as ``principal``; restores the previous one after."""
    token = _acting.set(principal)
    try:
        yield principal
    finally:
        _acting.reset(token)


def system_principal(name: str) -> Principal:
    """A named system actor (``cli:keys-rotate``, ``task:post-remittance``) for the audit trail."""
    return Principal(PrincipalKind.SYSTEM, role="system", name=name)


def client_address() -> str:
    """The client's address: the TCP peer, or what ``TRUSTED_PROXY_COUNT`` trusted proxies say
    (``ProxyFix`` in ``create_app`` rewrites ``remote_addr``). Rate limits, lockouts and the audit
    trail's "from where" all use this one value."""
    return request.remote_addr or "unknown"


def request_source() -> tuple[str | None, str | None]:
    """(source address, request id) of the current request, or (None, None) outside one."""
    if not has_request_context():
        return None, None
    return client_address(), g.get("request_id")
