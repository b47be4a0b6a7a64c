"""Synthetic charge CSVs (docs/charge-import.md) for a practice's own patients, for tests and benchmarks.

``write_charge_csv(session, target, claims=500)`` writes ``claims`` claims of one to three
scrub-clean lines each for the patients of the practice that have a primary coverage
on the date of service, and returns what the file holds (claims, lines, total), so a
test can compare the imported claims, the batches and the payments with it to the cent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.models import Coverage, Patient, Practice, Provider

HEADER = (
    "claim_ref",
    "patient_account",
    "patient_name",
    "rendering_npi",
    "place_of_service",
    "service_date",
    "procedure",
    "modifiers",
    "units",
    "charge",
    "diagnoses",
)
#: Visits whose codes pass every scrub rule together: (procedure, charge in cents, diagnoses).
VISITS: tuple[tuple[tuple[str, int, str], ...], ...] = (
    (("99213", 12_500, "I10"), ("36415", 1_200, "I10")),
    (("99214", 17_500, "E11.9:I10"), ("83036", 4_550, "E11.9")),
    (("99212", 8_500, "J06.9"),),
    (("99213", 13_075, "M54.50"), ("97110", 3_333, "M54.50")),
)


@dataclass
class ChargeFileFacts:
    """What a written charge file holds: its claim refs, lines and total, in cents."""

    claim_refs: list[str] = field(default_factory=list)
    lines: int = 0
    total_charge_cents: int = 0
    charge_by_ref: dict[str, int] = field(default_factory=dict)

    @property
    def claims(self) -> int:
        return len(self.claim_refs)


def billable_patients(session: Session, practice: Practice, on: date) -> list[Patient]:
    """The practice's active patients with a primary coverage effective on ``on``, by id."""
    coverages = session.scalars(
        select(Coverage)
        .join(Patient, Patient.id == Coverage.patient_id)
        .where(Patient.practice_id == practice.id, Patient.active.is_(True), Coverage.coverage_order == 1)
        .order_by(Coverage.patient_id)
    ).all()
    seen: dict[int, Patient] = {}
    for coverage in coverages:
        if coverage.is_effective_on(on) and coverage.patient_id not in seen:
            seen[coverage.patient_id] = coverage.patient
    return list(seen.values())


def charge_rows(
    session: Session,
    *,
    claims: int,
    practice: Practice | None = None,
    service_date: date | None = None,
    prefix: str = "IMP",
    start: int = 1,
    spread_days: int = 1,
    visits: Sequence[tuple[tuple[str, int, str], ...]] = VISITS,
) -> tuple[list[list[str]], ChargeFileFacts]:
    """The rows (header first) of a charge file with ``claims`` claims, and what they hold.

    Claim ``n`` (``claim_ref`` ``{prefix}{n:08d}``) is for the ``n``-th billable patient in turn,
    on ``service_date`` (default five days ago) or up to ``spread_days - 1`` days before it.
    """
    practice = practice or session.scalars(select(Practice).order_by(Practice.id)).first()
    if practice is None:
        raise ValueError("no practice: seed one first")
    last_dos = service_date or date.today() - timedelta(days=5)
    patients = billable_patients(session, practice, last_dos - timedelta(days=max(0, spread_days - 1)))
    if not patients:
        raise ValueError("the practice has no patient with a primary coverage on the date of service")
    rendering = session.scalar(
        select(Provider)
        .where(
            Provider.practice_id == practice.id, Provider.is_rendering.is_(True), Provider.active.is_(True)
        )
        .order_by(Provider.id)
    )
    facts = ChargeFileFacts()
    rows: list[list[str]] = [list(HEADER)]
    for n in range(start, start + claims):
        patient = patients[n % len(patients)]
        ref = f"{prefix}{n:08d}"
        dos = last_dos - timedelta(days=n % max(1, spread_days))
        total = 0
        for procedure, cents, diagnoses in visits[n % len(visits)]:
            rows.append(
                [
                    ref,
                    patient.account_number,
                    f"{patient.last_name}, {patient.first_name}",
                    rendering.npi if rendering is not None else "",
                    "11",
                    dos.isoformat(),
                    procedure,
                    "",
                    "1",
                    f"{cents // 100}.{cents % 100:02d}",
                    diagnoses,
                ]
            )
            total += cents
            facts.lines += 1
        facts.claim_refs.append(ref)
        facts.charge_by_ref[ref] = total
        facts.total_charge_cents += total
    return rows, facts


def charge_csv_bytes(rows: list[list[str]]) -> bytes:
    """The rows as an RFC 4180 CSV (CRLF line ends, quotes where needed), UTF-8."""
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def write_charge_csv(session: Session, target: Path | str, *, claims: int, **options: Any) -> ChargeFileFacts:
    """Write a charge CSV of ``claims`` claims to ``target`` (see :func:`charge_rows` for ``options``)."""
    rows, facts = charge_rows(session, claims=claims, **options)
    Path(target).write_bytes(charge_csv_bytes(rows))
    return facts
