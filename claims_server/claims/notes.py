"""Claim notes: what a user wrote about a claim, encrypted (``ClaimNote``), named by audit events.

A user's free text can name the patient ("Jane called, wrong DOB"), and
``audit_events.details`` is clear JSON kept for ever (hash-chained, never rewritten). So a
reason a user types for a claim change (the API's transition, replacement and void bodies,
the workspace's forms) is stored here, encrypted like every PHI column, and the change's
audit event carries only ``"note": <claim note public id>`` (:func:`reason_details`).
Reasons the code itself chooses ("clean scrub at creation", "277CA rejected the claim")
are not PHI and stay in the event's ``reason``.

Notes are written once (the database refuses UPDATE and DELETE but key rotation's, see
``claims_server.security.immutability``); reading them is audited as a read of the claim
(``security.read_audit``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.models import Claim, ClaimNote, ClaimNoteKind, User
from claims_server.security.principal import current_principal

#: The audit-details key naming the note that holds a user's reason.
NOTE_KEY = "note"


def add_note(
    session: Session, claim: Claim, text: str, *, kind: ClaimNoteKind = ClaimNoteKind.REASON
) -> ClaimNote:
    """Store ``text`` as a note on ``claim`` by the current user (flushed: its public id is known)."""
    if claim.id is None:
        session.flush()
    note = ClaimNote(claim_id=claim.id, author_user_id=current_principal().user_id, kind=kind, note=text)
    session.add(note)
    session.flush()
    return note


def reason_details(session: Session, claim: Claim, text: str | None) -> dict[str, Any]:
    """Audit details for a user's reason ``text`` about ``claim``: ``{"note": <public id>}``
    after storing it as a note, or ``{}`` when the user gave none."""
    text = (text or "").strip()
    if not text:
        return {}
    return {NOTE_KEY: add_note(session, claim, text).public_id}


def notes_by_public_id(session: Session, public_ids: Iterable[str]) -> dict[str, ClaimNote]:
    """The notes with these public ids (those that exist), by public id."""
    wanted = sorted(set(public_ids))
    if not wanted:
        return {}
    return {n.public_id: n for n in session.scalars(select(ClaimNote).where(ClaimNote.public_id.in_(wanted)))}


def list_notes(session: Session, claim: Claim) -> list[ClaimNote]:
    """``claim``'s notes, oldest first."""
    return list(
        session.scalars(select(ClaimNote).where(ClaimNote.claim_id == claim.id).order_by(ClaimNote.id))
    )


def note_to_json(note: ClaimNote, authors: dict[int, User]) -> dict[str, Any]:
    author = authors.get(note.author_user_id) if note.author_user_id is not None else None
    return {
        "id": note.public_id,
        "kind": note.kind.value,
        "note": note.note,
        "author": author.public_id if author is not None else None,
        "created_at": note.created_at,
    }


def notes_to_json(session: Session, notes: list[ClaimNote]) -> list[dict[str, Any]]:
    """The notes as the API shows them (the author as a user's public id; None: the system)."""
    ids = {n.author_user_id for n in notes if n.author_user_id is not None}
    authors = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [note_to_json(n, authors) for n in notes]
