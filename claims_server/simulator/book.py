"""What the simulated payer remembers between 837s: its adjudications and forward balances.

A real payer keeps every claim it adjudicated. When a replacement (CLM05-3 = 7) or a void
(8) names one by its payer claim number (REF*F8), the payer takes its adjudication back
with a reversal (CLP02 = 22: the same CLP01 and CLP07, every charge, payment and
adjustment amount negated, the original CAS group codes kept) in the 835 that carries the
corrected adjudication (TR3 005010X221A1 1.10.2.8). When an 835 nets below zero, BPR02
stays zero and a PLB ``FB`` (forward balance) with the negative amount carries it; a later
835 to the same payer that has money takes it back with a positive ``FB`` (1.10.2.17).

The book is one JSON file beside the 837s the simulator answered
(``outbox/remitted/payer-book.json``), written atomically. It holds amounts, codes, dates
of service, patient control numbers and payer claim numbers; no names or member ids (a
reversal's NM1*QC comes from the 837 that asks for it). Re-remitting a file after a crash
gives the same 835: a reversal is re-sent when its target names this very claim as what
replaced it, and a trace number's PLB is remembered.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from claims_server.simulator.rules import Adjustment, ClaimResult, LineResult
from edi.claims import Claim, ServiceLine

BOOK_NAME = "payer-book.json"
VERSION = 1
#: PLB03-1 for a balance carried to (or taken back from) another 835.
FORWARD_BALANCE = "FB"
#: Frequency codes (CLM05-3) that ask the payer to take an adjudication back.
REPLACEMENT, VOID = "7", "8"


def _cas(adjustments: tuple[Adjustment, ...]) -> list[list[Any]]:
    return [[a.group, a.reason, a.amount_cents] for a in adjustments]


def _adjustments(rows: list[list[Any]]) -> tuple[Adjustment, ...]:
    return tuple(Adjustment(str(g), str(r), int(c)) for g, r, c in rows)


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def record_of(result: ClaimResult) -> dict[str, Any]:
    """An adjudication as the book keeps it (no names, no member ids)."""
    claim = result.claim
    return {
        "payer_id": claim.payer.payer_id,
        "pcn": claim.patient_control_number,
        "status": result.adjudicated_status,
        "responsibility": claim.subscriber.responsibility,
        "filing_indicator": claim.subscriber.claim_filing_indicator,
        "place_of_service": claim.place_of_service,
        "frequency": claim.frequency_code,
        "paid": result.paid_cents,
        "lines": [
            {
                "procedure": r.line.procedure,
                "modifiers": list(r.line.modifiers),
                "charge": r.line.charge_cents,
                "units": str(r.line.units),
                "from": r.line.service_date.isoformat() if r.line.service_date else None,
                "to": r.line.service_date_end.isoformat() if r.line.service_date_end else None,
                "control": r.line.line_control_number,
                "allowed": r.allowed_cents,
                "paid": r.paid_cents,
                "cas": _cas(r.adjustments),
                "remarks": list(r.remarks),
            }
            for r in result.lines
        ],
        "claim_cas": _cas(result.claim_adjustments),
        "replaced_by": None,
    }


def result_of(record: dict[str, Any], asking: Claim, number: str) -> ClaimResult:
    """The adjudication ``record`` describes, for the patient and provider of ``asking``."""
    lines = tuple(
        LineResult(
            ServiceLine(
                procedure=row["procedure"],
                charge_cents=int(row["charge"]),
                units=Decimal(row["units"]),
                modifiers=tuple(row["modifiers"]),
                service_date=_day(row["from"]),
                service_date_end=_day(row["to"]),
                line_control_number=row["control"],
            ),
            int(row["allowed"]),
            int(row["paid"]),
            _adjustments(row["cas"]),
            tuple(row["remarks"]),
        )
        for row in record["lines"]
    )
    claim = replace(
        asking,
        patient_control_number=record["pcn"],
        subscriber=replace(
            asking.subscriber,
            responsibility=record["responsibility"],
            claim_filing_indicator=record["filing_indicator"],
        ),
        place_of_service=record["place_of_service"],
        frequency_code=record["frequency"],
        original_claim_number=None,
        lines=[r.line for r in lines],
        other_payers=[],
        total_charge_cents=sum(r.line.charge_cents for r in lines),
    )
    return ClaimResult(claim, lines, number, _adjustments(record["claim_cas"]))


@dataclass
class PayerBook:
    """The payer's memory (module docstring); ``path`` None keeps it in memory only."""

    path: Path | None = None
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: payer id -> [[reference, cents], ...]: money this payer still has to take back (FIFO).
    forward: dict[str, list[list[Any]]] = field(default_factory=dict)
    #: trace number (TRN02) -> its PLB adjustments [[reason, reference, cents], ...].
    plb: dict[str, list[list[Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PayerBook:
        path = Path(path)
        if not path.is_file():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, data.get("claims", {}), data.get("forward_balances", {}), data.get("plb", {}))

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": VERSION, "claims": self.claims, "forward_balances": self.forward, "plb": self.plb}
        temp = self.path.with_name(f".{self.path.name}.part")
        temp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temp, self.path)

    # -- adjudications

    def remember(self, number: str, result: ClaimResult) -> None:
        """Keep an adjudication under its payer claim number (CLP07)."""
        record = record_of(result)
        kept = self.claims.get(number)
        if kept is not None:
            record["replaced_by"] = kept.get("replaced_by")  # a file remitted again
        self.claims[number] = record

    def _current(self, named: str, asking: str) -> tuple[str, dict[str, Any]] | None:
        """The adjudication in force in the family of payer claim number ``named``: a
        replacement answered earlier took its place; a void left none."""
        seen: set[str] = set()
        number = named
        while number not in seen:
            seen.add(number)
            record = self.claims.get(number)
            if record is None or record.get("void"):
                return None
            later = record.get("replaced_by")
            if later is None or later == asking:  # asking: the same file remitted again
                return number, record
            number = later
        return None

    def take_back(self, claim: Claim, number: str) -> ClaimResult | None:
        """The reversal a replacement or void ``claim`` (payer claim number ``number``) asks
        for, recorded as done; None when it names nothing this payer has in force."""
        if claim.frequency_code not in (REPLACEMENT, VOID) or not claim.original_claim_number:
            return None
        found = self._current(claim.original_claim_number.strip(), number)
        if found is None:
            return None
        target, record = found
        if record["payer_id"] != claim.payer.payer_id:
            return None
        record["replaced_by"] = number
        if claim.frequency_code == VOID:
            self.claims[number] = {"payer_id": claim.payer.payer_id, "void": True, "replaced_by": None}
        return replace(result_of(record, claim, target), reversal=True)

    # -- forward balances

    def settle(self, payer_id: str, trace: str, net_cents: int, reference: str) -> list[tuple[str, str, int]]:
        """The PLB adjustments (reason, reference, cents) of an 835 to ``payer_id`` whose
        CLP04 add up to ``net_cents``: a negative net carried forward (FB, negative), or what
        is carried taken back from a positive one (FB, positive, at most the net)."""
        if trace in self.plb:
            return [(str(r), str(ref), int(c)) for r, ref, c in self.plb[trace]]
        owed = self.forward.setdefault(payer_id, [])
        out: list[tuple[str, str, int]] = []
        if net_cents < 0:
            out.append((FORWARD_BALANCE, reference, net_cents))
            owed.append([reference, -net_cents])
        else:
            left = net_cents
            while owed and left:
                ref, cents = owed[0]
                take = min(int(cents), left)
                out.append((FORWARD_BALANCE, str(ref), take))
                left -= take
                if take == cents:
                    owed.pop(0)
                else:
                    owed[0][1] = int(cents) - take
        if not owed:
            self.forward.pop(payer_id, None)
        if out:
            self.plb[trace] = [list(a) for a in out]
        return out
