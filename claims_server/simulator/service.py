"""The clearinghouse-and-payer simulator: answers the 837s dropped in its outbound folder.

``run_once(outbox, inbox)`` is one pass over the folder we upload to (``outbox``):

- every new 837 gets a 999 from our validator (``edi.ack.acknowledge``; a TA1 when its
  envelope is bad) and, for the transaction sets the 999 accepts, a 277CA with one
  verdict per claim (``rules.front_end``); the 837 moves to ``outbox/processed/``;
- every 837 answered in an *earlier* pass gets its 835 (``rules.adjudicate``: the
  accepted claims, one payment per payer) and moves to ``outbox/remitted/``: payers
  pay after they acknowledge, so the 835 comes one pass later.

Answers are written to ``inbox`` atomically (temporary name, then rename). Everything
is derived from the 837 itself (dates from its ISA/BHT, control numbers from its
ISA13), so the same 837 always gets the same answers, except what the payer remembers of
earlier ones (``claims_server.simulator.book``, ``outbox/remitted/payer-book.json``): a
replacement or void claim first gets the reversal of the adjudication it names (CLP02 =
22, in the same 835), and an 835 that would net below zero carries a forward balance
(PLB FB) that a later 835 takes back. The rules are in ``claims_server.simulator.rules``
and docs/simulator.md.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from claims_server.clearinghouse.transport import is_temporary
from claims_server.simulator import eligibility
from claims_server.simulator.book import BOOK_NAME, VOID, PayerBook
from claims_server.simulator.rules import ClaimResult, DeductibleTracker, adjudicate, front_end
from claims_server.simulator.x12out import trace_number, write_277ca, write_835
from edi.ack import acknowledge
from edi.validate import validate
from edi.x837 import Parsed837, X837ParseError, parse_837

PROCESSED = "processed"
REMITTED = "remitted"
_MAX_CONTROL = 999_999_999


@dataclass
class SimulatorReport:
    """What one pass wrote (file names in the inbox) and decided (counts, no PHI)."""

    answered: list[dict[str, Any]] = field(default_factory=list)
    remitted: list[dict[str, Any]] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {"answered": self.answered, "remitted": self.remitted}


def _control(isa13: str, offset: int) -> int:
    """Our reply's ISA13: one distinct number per (837 ISA13, kind of reply)."""
    base = int(isa13) if isa13.isdigit() else 0
    return ((base - 1) * 3 + offset) % _MAX_CONTROL + 1


def _write_atomic(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{name}.part"
    temp.write_text(text, encoding="ascii", newline="")
    os.replace(temp, folder / name)


def _when(parsed: Parsed837) -> datetime:
    created = parsed.batch.created
    if created is None:
        raise X837ParseError("BHT: the 837 has no creation date (BHT04/BHT05)", code="BHT04")
    return created


def _payer_claim_number(isa13: str, st02: str, position: int) -> str:
    return f"SIM{isa13.zfill(9)}{st02.zfill(4)[-4:]}{position:04d}"


def _usage(content: bytes) -> str:
    return "T" if content[102:103] == b"T" else "P"


def _parse(content: bytes, name: str) -> list[Parsed837]:
    try:
        return parse_837(content, file=name)
    except X837ParseError:
        return []


def answer_837(content: bytes, name: str, inbox: Path) -> dict[str, Any]:
    """Write the 999 (or TA1) and the 277CA for one 837; returns what was decided."""
    report = validate(content, file=name)
    first = report.interchanges[0].isa13 if report.interchanges else "0"
    sender = report.interchanges[0].sender.partition(":")[2].strip() if report.interchanges else "UNKNOWN"
    tag = "".join(ch for ch in f"{sender}-{first}" if ch.isalnum() or ch == "-")
    parsed_sets = _parse(content, name)
    when = _when(parsed_sets[0]) if parsed_sets else datetime(2000, 1, 1)
    try:
        ack = acknowledge(report, control_number=_control(first, 0), when=when)
    except LookupError:
        return {"file": name, "acknowledgment": None, "error": "not an X12 interchange"}
    _write_atomic(inbox, f"{ack.kind}-{tag}.x12", ack.text)
    outcome: dict[str, Any] = {"file": name, "acknowledgment": ack.kind, "accepted": 0, "rejected": 0}
    if ack.kind != "999":
        return outcome
    accepted_sets = {ts.st02 for ts in report.transaction_sets if ts.ik5_code in ("A", "E")}
    usage = _usage(content)
    for parsed in parsed_sets:
        if parsed.control_number not in accepted_sets:
            continue
        verdicts = []
        for position, claim in enumerate(parsed.claims, start=1):
            verdict = front_end(claim)
            verdicts.append((claim, verdict, _payer_claim_number(first, parsed.control_number, position)))
            outcome["accepted" if verdict.accepted else "rejected"] += 1
        if verdicts:
            text = write_277ca(parsed, verdicts, control=_control(first, 1), when=when, usage=usage)
            _write_atomic(inbox, f"277CA-{tag}-{parsed.control_number}.x12", text)
    return outcome


def remit_837(content: bytes, name: str, inbox: Path, *, book: PayerBook | None = None) -> dict[str, Any]:
    """Write the 835 for the accepted claims of an 837 answered earlier.

    With a ``book`` (what the payer remembers, :mod:`claims_server.simulator.book`), a
    replacement (CLM05-3 = 7) or void (8) naming an adjudication in force (REF*F8) is
    preceded by its reversal in the same transaction set, a void adjudicated no further; a
    set netting below zero carries a forward balance (PLB FB) and a later one with money
    takes it back. The book is updated, not saved (the caller saves it).
    """
    report = validate(content, file=name)
    first = report.interchanges[0].isa13 if report.interchanges else "0"
    sender = report.interchanges[0].sender.partition(":")[2].strip() if report.interchanges else "UNKNOWN"
    tag = "".join(ch for ch in f"{sender}-{first}" if ch.isalnum() or ch == "-")
    accepted_sets = {ts.st02 for ts in report.transaction_sets if ts.ik5_code in ("A", "E")}
    outcome: dict[str, Any] = {"file": name, "claims": 0, "paid_cents": 0, "denied": 0, "reversed": 0}
    control = _control(first, 2)
    for parsed in _parse(content, name):
        if parsed.control_number not in accepted_sets:
            continue
        when = _when(parsed)
        deductibles = DeductibleTracker()
        by_payer: dict[str, list[ClaimResult]] = {}
        for position, claim in enumerate(parsed.claims, start=1):
            if not front_end(claim).accepted:
                continue
            number = _payer_claim_number(first, parsed.control_number, position)
            answers = by_payer.setdefault(claim.payer.payer_id, [])
            reversal = book.take_back(claim, number) if book is not None else None
            if reversal is not None:
                answers.append(reversal)
                outcome["reversed"] += 1
                outcome["paid_cents"] -= reversal.paid_cents
            if claim.frequency_code == VOID:
                continue  # a void asks for the reversal only (none when it names nothing in force)
            result = adjudicate(
                claim, received=when.date(), payer_claim_number=number, deductibles=deductibles
            )
            answers.append(result)
            if book is not None:
                book.remember(number, result)
            outcome["claims"] += 1
            outcome["paid_cents"] += result.paid_cents
            outcome["denied"] += result.status_code == "4"
        sets = [answers for answers in by_payer.values() if answers]
        if sets:
            plb = [
                _forward_balance(book, answers, trace_number(control, index))
                for index, answers in enumerate(sets, start=1)
            ]
            text = write_835(
                parsed, sets, control=control, when=when, usage=_usage(content), plb_by_payer=plb
            )
            _write_atomic(inbox, f"835-{tag}-{parsed.control_number}.x12", text)
    return outcome


def _forward_balance(
    book: PayerBook | None, answers: list[ClaimResult], trace: str
) -> list[tuple[str, str, int]]:
    """The PLB of one transaction set: a forward balance carried or taken back (book.settle)."""
    if book is None:
        return []
    net = sum(r.sign * r.paid_cents for r in answers)
    reference = next((r.claim.patient_control_number for r in answers if r.reversal), "")
    return book.settle(answers[0].claim.payer.payer_id, trace, net, reference)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not is_temporary(p.name))


def run_once(outbox: str | os.PathLike[str], inbox: str | os.PathLike[str]) -> SimulatorReport:
    """One pass: remit what was answered before, then answer what is new (see module doc)."""
    outbox, inbox = Path(outbox), Path(inbox)
    report = SimulatorReport()
    processed, remitted = outbox / PROCESSED, outbox / REMITTED
    book = PayerBook.load(remitted / BOOK_NAME)
    for path in _files(processed):
        report.remitted.append(remit_837(path.read_bytes(), path.name, inbox, book=book))
        book.save()  # before the 837 moves: remitting it again gives the same 835
        remitted.mkdir(parents=True, exist_ok=True)
        os.replace(path, remitted / path.name)
    for path in _files(outbox):
        content = path.read_bytes()
        done = processed
        if eligibility.is_270(content):
            # 270s are answered at once with a 271 and never remitted (claims_server.simulator.eligibility).
            report.answered.append(eligibility.answer_270_file(content, path.name, inbox))
            done = outbox / eligibility.ANSWERED
        else:
            report.answered.append(answer_837(content, path.name, inbox))
        done.mkdir(parents=True, exist_ok=True)
        os.replace(path, done / path.name)
    return report


def watch(
    outbox: str | os.PathLike[str],
    inbox: str | os.PathLike[str],
    *,
    interval: float = 2.0,
    passes: int | None = None,
) -> None:
    """Run :func:`run_once` every ``interval`` seconds (forever, or ``passes`` times)."""
    done = 0
    while passes is None or done < passes:
        run_once(outbox, inbox)
        done += 1
        if passes is None or done < passes:
            time.sleep(interval)
