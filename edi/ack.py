"""Our answer to an inbound X12 file: a TA1 when an interchange envelope is bad, else a 999.

One function, :func:`acknowledge`, shared by the ``claims-server edi ack`` command, the
``POST /api/v1/edi/x12`` endpoint and the clearinghouse simulator, so every place that
answers a file answers it the same way:

- an interchange whose envelope is unsound (ISA13 ≠ IEA02, bad ISA fields ...) gets a
  TA1 with the envelope's note code (TA105), because a 999 cannot acknowledge groups
  of an interchange that cannot be trusted;
- otherwise one 999 interchange answers every functional group read (one 999
  transaction set per group: AK2/IK3/IK4/IK5 per transaction set, AK9 per group);
- acknowledgments are never acknowledged (X12.6): a group with GS01 "FA" (999, 997)
  gets no 999, and neither do TA1 segments; when nothing else is left,
  :class:`NothingToAcknowledge` says so instead of a 999 with an empty group;
- a set whose implementation guide we do not have is answered ``IK5*E*I6`` (accepted,
  implementation convention not supported), never ``IK5*A`` (docs/edi-reading.md).

Sender and receiver are swapped from the inbound ISA/GS: we answer whoever sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edi import ta1, x999
from edi.charset import to_x12_text
from edi.validate import ValidationReport
from edi.writer import X12WriteError

__all__ = ["Acknowledgment", "NothingToAcknowledge", "acknowledge"]


class NothingToAcknowledge(LookupError):
    """The file is X12, but nothing in it may be acknowledged: it holds only
    acknowledgments (999/997 under GS01 FA, TA1 segments) or no functional group.
    ``report`` is the validation of the file, for its verdict."""

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class Acknowledgment:
    """The acknowledgment text and what it says.

    ``kind`` is ``"999"`` or ``"TA1"``; ``accepted`` is True when nothing was rejected
    (every interchange sound and every transaction set IK5 A or E).
    """

    kind: str
    text: str
    accepted: bool
    report: ValidationReport
    notes: tuple[str, ...] = ()  # what was read but deliberately not acknowledged, and why


def acknowledge(
    report: ValidationReport, *, control_number: int, when: datetime | None = None
) -> Acknowledgment:
    """Build our TA1 or 999 answering everything ``report`` read.

    ``control_number`` is our ISA13 (and GS06 of the 999); TA1s for several bad
    interchanges take consecutive numbers from it. Raises ``LookupError`` when the
    report holds no readable ISA (nothing can be acknowledged).
    """
    if not report.readable or not report.interchanges:
        raise LookupError("the file has no readable ISA segment to acknowledge")
    try:
        return _acknowledge(report, control_number=control_number, when=when)
    except X12WriteError as exc:
        # What the answer must echo cannot be written as X12 (an ISA13 that is not digits,
        # an ISA09 that is not a date): there is nothing to acknowledge it with, and the
        # report's findings say why. The writer's message names the element, never a value.
        raise LookupError(f"the file cannot be acknowledged: {exc.message}") from None


def _party(value: str, fallback: str = "UNKNOWN") -> str:
    """An inbound ISA05-08 value to address our answer with: as X12 text (the writer
    converts it), or ``fallback`` when nothing usable is left (every character was
    outside the character sets, or a qualifier is not two characters)."""
    text = to_x12_text(value).strip()
    if not text or (fallback == "ZZ" and len(text) != 2):
        return fallback
    return value.strip()


def _acknowledge(report: ValidationReport, *, control_number: int, when: datetime | None) -> Acknowledgment:
    bad = [i for i in report.interchanges if i.ta1_note != "000"]
    if bad:
        texts = [
            ta1.generate_ta1(
                acknowledged_isa=_with_parties(i.summary.isa_elements),
                note_code=i.ta1_note,
                control_number=control_number + offset,
                when=when,
            )
            for offset, i in enumerate(bad)
        ]
        return Acknowledgment("TA1", "".join(texts), False, report)
    notes = _not_acknowledged(report)
    groups = x999.groups_from_report(report)
    if not groups:
        raise NothingToAcknowledge(
            "; ".join(notes) or "the file holds no functional group to acknowledge; no 999 is produced",
            report,
        )
    # Addressed back to the sender of the first group we answer (its interchange's parties).
    first, group = next(
        (
            (i.summary, g)
            for i in report.interchanges
            for g in i.summary.groups
            if not x999.is_acknowledgment(g.gs01, "")
        ),
        (report.interchanges[0].summary, None),
    )
    text = x999.generate_999(
        groups,
        sender_qualifier=_party(first.receiver_qualifier, "ZZ"),
        sender_id=_party(first.receiver_id),
        receiver_qualifier=_party(first.sender_qualifier, "ZZ"),
        receiver_id=_party(first.sender_id),
        interchange_control_number=control_number,
        group_control_number=control_number,
        application_sender=group.gs03 if group else first.receiver_id,
        application_receiver=group.gs02 if group else first.sender_id,
        usage=first.usage if first.usage in ("P", "T") else "P",
        when=when,
    )
    accepted = all(
        ts.ik5_code in ("A", "E")
        for ts in report.transaction_sets
        if not x999.is_acknowledgment(ts.gs01, ts.st01)
    )
    return Acknowledgment("999", text, accepted and report.valid, report, tuple(notes))


def _not_acknowledged(report: ValidationReport) -> list[str]:
    """What the file holds that no 999 answers: acknowledgment groups and TA1s."""
    notes: list[str] = []
    for interchange in report.interchanges:
        summary = interchange.summary
        for group in summary.groups:
            if x999.is_acknowledgment(group.gs01, ""):
                notes.append(
                    f"interchange {summary.isa13}: functional group {group.gs06} (GS01 FA, "
                    f"{len(group.transaction_sets)} acknowledgment(s)) is not acknowledged: "
                    "acknowledgments are never acknowledged, so no 999 answers it"
                )
        if not summary.groups:
            notes.append(
                f"interchange {summary.isa13} holds no functional group (only TA1 or nothing): "
                "a TA1 is never acknowledged, so no 999 is produced"
            )
    return notes


def _with_parties(isa: list[str]) -> list[str]:
    elements = list(isa)
    for index, fallback in ((5, "ZZ"), (6, "UNKNOWN"), (7, "ZZ"), (8, "UNKNOWN")):
        if index < len(elements):
            elements[index] = _party(elements[index], fallback)
    return elements
