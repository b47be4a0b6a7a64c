"""The demo's billing day: claims in, 837s out, acknowledgments back (``claims-server demo``).

After the practice is seeded, ``run_billing_day`` creates a few dozen synthetic claims
through the claims services (some with defects the scrubber catches: they stay draft
with their findings), sends the ready ones (``send_ready_claims``, the service behind
``POST /api/v1/batches``, ``claims-server batches send`` and the scheduled send: 837s
uploaded over the folder adapter to the simulated clearinghouse), lets the simulator
answer (999 + 277CA), polls and processes the answers (the service the scheduler's
``poll-clearinghouse-inboxes`` job runs), then lets the simulator pay (835, stored for the remittance
feature). Planted defects the scrubber cannot see come back as a 277CA rejection (a
missing prior authorization) and as 835 denials (bundling, missing NDC, timely filing).
Every file of the day is kept under ``out_dir``.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.claims.services import create_claim_from_json
from claims_server.clearinghouse import services as clearinghouse
from claims_server.db import unit_of_work
from claims_server.demo_seed import ROUTE_NAME
from claims_server.models import (
    Claim,
    ClearinghouseRoute,
    Coverage,
    Provider,
    WorkItem,
)
from claims_server.security.principal import acting_as, system_principal
from claims_server.simulator.service import run_once
from claims_server.submission.sending import send_ready_claims

CLAIMS_PER_DAY = 36

# (procedures with charges, diagnoses) of everyday visits, cycled through the patients.
_VISITS: tuple[tuple[tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    ((("99213", "125.00"),), ("I10",)),
    ((("99214", "175.00"), ("83036", "45.00")), ("E11.9", "I10")),
    ((("99212", "85.00"),), ("J06.9",)),
    ((("99213", "125.00"), ("36415", "12.00"), ("85025", "28.00")), ("D64.9",)),
    ((("99215", "240.00"),), ("I50.9", "I10")),
    ((("97110", "65.00"),), ("M54.50",)),
)


@dataclass
class BillingDay:
    """What the demo's billing day did (counts and codes; patients only counted, never named)."""

    out_dir: str
    claims_created: int = 0
    claim_states: dict[str, int] = field(default_factory=dict)
    held: list[dict[str, Any]] = field(default_factory=list)
    batches: int = 0
    claims_batched: int = 0
    acknowledgments: list[dict[str, Any]] = field(default_factory=list)
    remittances: list[dict[str, Any]] = field(default_factory=list)
    work_items: int = 0
    files: dict[str, list[str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"claims created today: {self.claims_created}",
            "claims by state: " + ", ".join(f"{k} {v}" for k, v in sorted(self.claim_states.items())),
            f"held back (need correcting): {len(self.held)}",
        ]
        for held in self.held:
            rules = sorted({f["rule_id"] for f in held["findings"] if f["severity"] == "error"})
            out.append(f"  {held['patient_control_number']}: {', '.join(rules)}")
        out += [
            f"batches sent: {self.batches} ({self.claims_batched} claims)",
            "answers processed: "
            + ", ".join(f"{a['kind']} ({a['status']})" for a in self.acknowledgments + self.remittances),
            f"work items opened (rejections and denials): {self.work_items}",
            f"EDI files: {self.out_dir}",
        ]
        return out

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir,
            "claims_created": self.claims_created,
            "claim_states": self.claim_states,
            "held": self.held,
            "batches": self.batches,
            "claims_batched": self.claims_batched,
            "acknowledgments": self.acknowledgments,
            "remittances": self.remittances,
            "work_items": self.work_items,
            "files": self.files,
        }


def _claim_documents(session: Session, today: date) -> list[dict[str, Any]]:
    """Today's claims: everyday visits plus the planted defects (see module docstring)."""
    coverages = session.scalars(
        select(Coverage).where(Coverage.coverage_order == 1).order_by(Coverage.id)
    ).all()
    rendering = session.scalars(select(Provider).where(Provider.is_rendering).order_by(Provider.id)).all()
    docs: list[dict[str, Any]] = []
    for n in range(CLAIMS_PER_DAY):
        coverage = coverages[n % len(coverages)]
        procedures, diagnoses = _VISITS[n % len(_VISITS)]
        service_date = today - timedelta(days=1 + n % 9)
        docs.append(
            {
                "patient": coverage.patient.public_id,
                "coverage": coverage.public_id,
                "place_of_service": "11",
                "rendering_provider": rendering[n % len(rendering)].npi,
                "diagnoses": list(diagnoses),
                "lines": [
                    {
                        "procedure": code,
                        "charge": charge,
                        "units": "1",
                        "service_date": service_date.isoformat(),
                        "diagnosis_pointers": list(range(1, len(diagnoses) + 1))[:4],
                    }
                    for code, charge in procedures
                ],
                "ready": True,
            }
        )
    by_payer = {c.payer.claim_filing_indicator.value: c for c in coverages}
    medicaid = by_payer.get("MC", coverages[0])
    planted = [
        # Scrubber catches: a diagnosis code that does not exist, and a date of service in the future.
        ("diagnoses", ["E11.999"]),
        ("service_date", (today + timedelta(days=5)).isoformat()),
        # The simulated payer catches: MRI without authorization (277CA), ECG billed in parts
        # (835 CO-97), a drug code without its NDC (835 CO-16), a Medicaid claim 120 days old
        # (835 CO-29: the payer's limit is 90 days, the practice has 180 on file).
        ("lines", [("72148", "900.00")]),
        ("lines", [("93000", "60.00"), ("93010", "30.00")]),
        ("lines", [("99213", "125.00"), ("J1100", "18.00")]),
        ("medicaid_late", None),
    ]
    for index, (kind, value) in enumerate(planted):
        doc = docs[index]
        if kind == "diagnoses":
            doc["diagnoses"] = value
            for line in doc["lines"]:
                line["diagnosis_pointers"] = [1]
        elif kind == "service_date":
            for line in doc["lines"]:
                line["service_date"] = value
        elif kind == "lines":
            date_of_service = doc["lines"][0]["service_date"]
            doc["lines"] = [
                {
                    "procedure": code,
                    "charge": charge,
                    "service_date": date_of_service,
                    "diagnosis_pointers": [1],
                }
                for code, charge in value
            ]
        else:
            doc["patient"], doc["coverage"] = medicaid.patient.public_id, medicaid.public_id
            for line in doc["lines"]:
                line["service_date"] = (today - timedelta(days=120)).isoformat()
    return docs


def _copy_inbox(inbox: Path, keep: Path) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    if inbox.is_dir():
        for path in inbox.iterdir():
            if path.is_file() and not path.name.startswith("."):
                shutil.copy2(path, keep / path.name)


def run_billing_day(
    factory: sessionmaker[Session], out_dir: Path, *, today: date | None = None
) -> BillingDay:
    """Run the demo's day against the seeded practice; files go under ``out_dir``."""
    today = today or date.today()
    out_dir.mkdir(parents=True, exist_ok=True)
    day = BillingDay(out_dir=str(out_dir))
    with acting_as(system_principal("cli:demo")):
        with unit_of_work(factory) as session:
            route = session.scalar(select(ClearinghouseRoute).where(ClearinghouseRoute.name == ROUTE_NAME))
            route_id = route.id
            outbox = out_dir / str(route.settings.get("outbox", "edi/outbox"))
            inbox = out_dir / str(route.settings.get("inbox", "edi/inbox"))
            created_ids = []
            for doc in _claim_documents(session, today):
                result = create_claim_from_json(session, doc)
                created_ids.append(result.claim.id)
                if result.claim.state.value == "draft":
                    day.held.append(
                        {
                            "claim": result.claim.public_id,
                            "patient_control_number": result.claim.patient_control_number,
                            "stage": "scrub",
                            "findings": [f for f in result.findings if f["severity"] == "error"],
                        }
                    )
            day.claims_created = len(created_ids)

        def transport(route: ClearinghouseRoute) -> Any:
            return clearinghouse.route_transport(route, out_dir)

        # As ``claims-server batches send --route`` (and the scheduled send) does it.
        sent = send_ready_claims(factory, route_id=route_id, today=today, transport_factory=transport)
        day.batches, day.claims_batched = len(sent.batches), sent.claims_batched
        day.held += [dict(h.to_json_dict(), stage="837") for h in sent.held]
        received = out_dir / "received"
        for _ in range(2):  # answers (999, 277CA), then the payer's 835 one pass later
            run_once(outbox, inbox)
            _copy_inbox(inbox, received)
            polled = clearinghouse.poll_inbox(factory, route_id, transport_factory=transport)
            for outcome in polled.files:
                target = day.remittances if outcome.kind == "835" else day.acknowledgments
                target.append(outcome.to_json_dict())
        with factory() as session:
            states = Counter(
                s.value for s in session.scalars(select(Claim.state).where(Claim.id.in_(created_ids)))
            )
            day.claim_states = dict(states)
            day.work_items = session.scalar(
                select(func.count()).select_from(WorkItem).where(WorkItem.claim_id.in_(created_ids))
            )
    day.files = {
        "sent_837": sorted(str(p) for p in (outbox / "remitted").glob("*.x12")),
        "received": sorted(str(p) for p in received.glob("*.x12")),
    }
    return day
