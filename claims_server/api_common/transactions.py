"""One transaction per request, and ``Idempotency-Key`` replay for POSTs that create.

Views that change data are wrapped in :func:`mutation`: the request's session commits
only when the view answers with a success status, and rolls back on any error, so a
bad request changes nothing (the problem+json answer comes from the error handler).

With ``idempotent=True`` a request carrying ``Idempotency-Key`` is recorded in
``idempotency_records`` (per principal and key) with a fingerprint of its method, path
and canonical JSON body, in the same transaction as the work it did:

- same key, same fingerprint, first request finished: the stored status and body are
  replayed (with ``Idempotent-Replayed: true``), and nothing runs again;
- same key, different fingerprint: 422, nothing runs;
- same key while the first request is still running (a concurrent retry): the
  record's unique constraint makes the second insert fail; it then replays the first
  answer once committed, or answers 409 if it has not finished.

Failed requests roll back their record too, so a client may retry a request that
failed with the same key (Stripe's behaviour for errors that changed nothing).

``own_transactions=True`` is for a view whose service commits its own work through the
session factory, in several transactions (sending claims: build the batches, then upload
each one). Holding the request's transaction open across those would hold SQLite's one
write lock (the service would wait on itself), so the key is reserved first in a
transaction of its own (the record, answer still empty: a concurrent retry gets 409),
the view runs, and the answer is stored in a second one; a failed or refused request
deletes the reservation, so the retry runs again. A process killed while the view runs
leaves the reservation until it expires (the retry gets 409 until then; a new key works).

The stored answer is the body exactly as sent, and it usually carries PHI (the created
patient, coverage or claim), so ``IdempotencyRecord.response_body`` is an encrypted
column (AES-GCM under the data key, bound to the record's ``public_id``). The body is
kept rather than re-rendered from the created object because the routes answer with
different things (a claim with its scrub findings at that moment, a payment with its
receipt) and a replay must say what the first answer said. Only successes are stored,
so an error is never replayed: the retry runs again. A replay hands PHI back, so it
is audited (``idempotency.replay``, the record's public id). Expired records are
deleted by ``claims_server.retention.purge`` (``claims-server maintenance purge`` and
the ``maintenance-purge`` beat entry), not only skipped on lookup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import Response, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claims_server.errors import Conflict, Unprocessable
from claims_server.models import IdempotencyRecord
from claims_server.models.common import utcnow

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
#: A key is 1-255 printable ASCII characters without spaces (the document states the same pattern).
KEY_PATTERN = "^[!-~]+$"


def _retention() -> timedelta:
    """How long a stored answer is replayed (then purged): ``IDEMPOTENCY_RETENTION_HOURS``."""
    from claims_server.app import state

    return timedelta(hours=state().settings.IDEMPOTENCY_RETENTION_HOURS)


def principal_key() -> str:
    """``user:<id>`` / ``token:<id>`` of the caller: Idempotency-Keys are scoped per principal."""
    from claims_server.security.principal import current_principal

    principal = current_principal()
    ident = principal.user_id or principal.token_id or principal.patient_id or principal.name
    return f"{principal.kind.value}:{ident}"[:100]


def required_idempotency_key(what: str) -> str:
    """The request's ``Idempotency-Key`` scoped to the caller, for services that post money
    and key their ledger entries by it; 422 naming the header when it is missing."""
    key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    if not key:
        raise Unprocessable(
            f"{what} needs an {IDEMPOTENCY_HEADER} header so that a retry cannot post twice",
            errors=[{"field": IDEMPOTENCY_HEADER, "location": "headers", "rule": "required"}],
        )
    return f"{principal_key()}:{key}"[:KEY_MAX_LENGTH]


def request_fingerprint() -> str:
    """SHA-256 of method, path and body (JSON canonicalised: key order and spacing ignored)."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() if raw else b""
    except ValueError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(
        record.response_body or "null",
        status=record.response_status or 200,
        mimetype="application/problem+json" if (record.response_status or 200) >= 400 else "application/json",
    )
    response.headers[REPLAY_HEADER] = "true"
    return response


def _existing(session: Session, principal: str, key: str) -> IdempotencyRecord | None:
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    )
    if record is not None and record.expires_at is not None and record.expires_at < utcnow():
        session.delete(record)
        session.flush()
        return None
    return record


def _check(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_fingerprint != fingerprint:
        raise Unprocessable(
            "this Idempotency-Key was already used with a different request body",
            errors=[
                {
                    "field": IDEMPOTENCY_HEADER,
                    "location": "headers",
                    "rule": "idempotency_key_reuse",
                    "message": "the key belongs to a different request; use a new key",
                }
            ],
        )
    if record.response_status is None:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry later")
    return _replay(record)


def _audit_replay(session: Session, record: IdempotencyRecord) -> None:
    """A replay hands the first answer (often PHI) back: one audit event, nothing else changes."""
    from claims_server.models import AuditAction
    from claims_server.security.audit import audit_event

    public_id, status = record.public_id, record.response_status
    session.rollback()
    audit_event(
        session,
        action=AuditAction.READ,
        event_type="idempotency.replay",
        entity_type="idempotency_record",
        entity_id=public_id,
        details={"status": status},
    )
    session.commit()


def _checked_key() -> str | None:
    """The request's ``Idempotency-Key`` (stripped), None without one; 422 when malformed."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > KEY_MAX_LENGTH:
        raise Unprocessable(
            f"{IDEMPOTENCY_HEADER} must be 1-{KEY_MAX_LENGTH} characters",
            errors=[{"field": IDEMPOTENCY_HEADER, "location": "headers", "rule": "length"}],
        )
    if not re.match(KEY_PATTERN, key):
        raise Unprocessable(
            f"{IDEMPOTENCY_HEADER} must be printable ASCII characters without spaces",
            errors=[{"field": IDEMPOTENCY_HEADER, "location": "headers", "rule": "pattern"}],
        )
    return key


def _release(session: Session, record_id: int | None) -> None:
    """Delete a reservation whose request failed (``own_transactions``): the retry runs again."""
    if record_id is None:
        return
    record = session.get(IdempotencyRecord, record_id)
    if record is not None and record.response_status is None:
        session.delete(record)
    session.commit()


def _own_transactions(session: Session, key: str | None, run: Callable[[], Any]) -> Response:
    """``mutation(own_transactions=True)``: reserve the key, run the view, store its answer."""
    from flask import make_response

    record_id = None
    if key is not None:
        principal, fingerprint = principal_key(), request_fingerprint()
        existing = _existing(session, principal, key)
        if existing is None:
            record = IdempotencyRecord(
                principal=principal,
                key=key,
                request_fingerprint=fingerprint,
                expires_at=utcnow() + _retention(),
            )
            session.add(record)
            try:
                session.commit()
                record_id = record.id
            except IntegrityError:
                # A concurrent request with the same key reserved it first.
                session.rollback()
                existing = _existing(session, principal, key)
                if existing is None:
                    raise
        if existing is not None:
            response = _check(existing, fingerprint)
            _audit_replay(session, existing)
            return response
    try:
        response = make_response(run())
    except BaseException:
        session.rollback()
        _release(session, record_id)
        raise
    if response.status_code >= 400:
        session.rollback()
        _release(session, record_id)
        return response
    if record_id is not None:
        record = session.get(IdempotencyRecord, record_id)
        if record is not None:
            record.response_status = response.status_code
            record.response_body = response.get_data(as_text=True)
    session.commit()
    return response


def mutation(
    *, idempotent: bool = False, own_transactions: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a view in one transaction (and Idempotency-Key handling when ``idempotent``).

    With ``own_transactions`` the view's service commits its own work (see the module doc).
    Place it directly under ``@blp.route`` so it sees the finished response.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from claims_server.app import db_session

            session = db_session()
            key = _checked_key() if idempotent else None
            if own_transactions:
                return _own_transactions(session, key, lambda: view(*args, **kwargs))
            record = None
            try:
                if key is not None:
                    principal, fingerprint = principal_key(), request_fingerprint()
                    existing = _existing(session, principal, key)
                    if existing is not None:
                        response = _check(existing, fingerprint)
                        _audit_replay(session, existing)
                        return response
                    record = IdempotencyRecord(
                        principal=principal,
                        key=key,
                        request_fingerprint=fingerprint,
                        expires_at=utcnow() + _retention(),
                    )
                    session.add(record)
                    session.flush()
                response = view(*args, **kwargs)
                if not isinstance(response, Response):
                    from flask import make_response

                    response = make_response(response)
                if response.status_code >= 400:
                    session.rollback()
                    return response
                if record is not None:
                    record.response_status = response.status_code
                    record.response_body = response.get_data(as_text=True)
                session.commit()
                return response
            except IntegrityError:
                session.rollback()
                if key is None or record is None:
                    raise
                # A concurrent request with the same key committed first: answer as it did.
                existing = _existing(session, principal, key)
                if existing is None:
                    raise
                response = _check(existing, fingerprint)
                _audit_replay(session, existing)
                return response
            except BaseException:
                session.rollback()
                raise

        # The OpenAPI document lists the header (api_common.openapi; "required" for money postings).
        wrapper.idempotency_key = (  # type: ignore[attr-defined]
            getattr(view, "idempotency_key", "optional") if idempotent else None
        )
        return wrapper

    return decorator
