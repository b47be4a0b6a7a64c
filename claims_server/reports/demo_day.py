"""The demo's day, continued after the 835s arrive (``claims-server demo``).

1. Every 835 the inbox stored and nobody posted yet is posted (``remittance.services.run_posting``;
   the inbox hook may already have done it, and posting is idempotent).
2. The computed queues are swept (unpaid, needs secondary, patient balance).
3. One denial is corrected and resubmitted: the claim the payer denied for a drug line
   without its NDC (CO-16) gets a frequency-7 replacement with the NDC added, is made
   ready, batched, sent and answered by the simulator.
4. One claim is billed to the secondary: a next-payer claim is created, made ready and sent
   through the normal batch (the batcher adds the primary's COB loops, 2320/2330/2430), and
   the simulator answers it; a copy of the interchange is kept in ``secondary/`` under the
   demo folder.
5. A/R aging as of today and the KPIs of the current month (the dashboard's tiles) are
   computed; the ledger's trial balance must sum to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.api_common.fields import cents_to_money
from claims_server.claims.services import make_ready
from claims_server.clearinghouse import services as clearinghouse
from claims_server.corrections.services import create_replacement_claim
from claims_server.db import unit_of_work
from claims_server.demo_seed import ROUTE_NAME
from claims_server.ledger.services import account_totals
from claims_server.models import (
    BatchClaim,
    Claim,
    ClearinghouseRoute,
    EdiFile,
    EdiFileKind,
    EdiFileStatus,
    FileDirection,
    WorkItem,
)
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.reports.services import aging_to_json, ar_aging, kpis, kpis_to_json, month_periods
from claims_server.secondary.services import claims_needing_next_payer, create_next_payer_claim
from claims_server.security.principal import acting_as, system_principal
from claims_server.simulator.service import run_once
from claims_server.submission.sending import SendReport, send_ready_claims
from claims_server.workqueue.services import queue_counts, sweep
from edi.validate import validate

#: A synthetic NDC (11 digits, 5-4-2) for the demo's corrected drug line.
DEMO_NDC = "63323016501"


@dataclass
class RemitDay:
    """What the continuation did; counts, codes and public ids only (no patient data)."""

    remittances_posted: int = 0
    sweep: dict[str, dict[str, int]] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    corrected: dict[str, Any] | None = None
    secondary: dict[str, Any] | None = None
    aging: dict[str, Any] = field(default_factory=dict)
    kpis: dict[str, Any] = field(default_factory=dict)
    ledger_totals: dict[str, str] = field(default_factory=dict)
    ledger_balances: bool = False

    def lines(self) -> list[str]:
        # 835s normally post as the inbox receives them; this counts any left unposted.
        out = [f"835s still unposted, posted now: {self.remittances_posted}"]
        out.append("work queues: " + ", ".join(f"{q} {n}" for q, n in self.queues.items() if n))
        if self.corrected:
            out.append(
                f"corrected and resubmitted: claim {self.corrected['original']} -> replacement "
                f"{self.corrected['replacement']} (frequency 7, REF*F8 {self.corrected['ref_f8']}), "
                f"{self.corrected['state']}"
            )
        if self.secondary:
            sent = (
                f"held back with {self.secondary['errors']} findings"
                if self.secondary["held"]
                else f"batched 837 {self.secondary['file']} with {self.secondary['errors']} errors"
            )
            out.append(
                f"billed secondary: claim {self.secondary['claim']} (COB paid {self.secondary['prior_paid']}), "
                f"{sent}, {self.secondary['state']}"
            )
        totals = self.aging.get("totals", {})
        out.append("A/R aging by payer: " + ", ".join(f"{b} {v}" for b, v in totals.items()))
        out.append(
            "KPIs: "
            + ", ".join(
                f"{k['name']} {k['value'] if k['value'] is not None else 'n/a'}"
                for k in self.kpis.get("kpis", [])
            )
        )
        out.append(f"ledger balances (trial balance sums to zero): {'yes' if self.ledger_balances else 'NO'}")
        return out

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "remittances_posted": self.remittances_posted,
            "sweep": self.sweep,
            "queues": self.queues,
            "corrected": self.corrected,
            "secondary": self.secondary,
            "ar_aging": self.aging,
            "kpis": self.kpis,
            "ledger_totals": self.ledger_totals,
            "ledger_balances": self.ledger_balances,
        }


def _post_pending(factory: sessionmaker[Session]) -> int:
    from claims_server.remittance.services import run_posting

    with factory() as session:
        pending = list(
            session.scalars(
                select(EdiFile.id).where(
                    EdiFile.kind == EdiFileKind.REMITTANCE_835,
                    EdiFile.direction == FileDirection.INBOUND,
                    EdiFile.status == EdiFileStatus.RECEIVED,
                )
            )
        )
    return sum(1 for file_id in pending if run_posting(factory, file_id).status == "posted")


def _send_and_answer(factory: sessionmaker[Session], out_dir: Path, route_id: int, today: date) -> SendReport:
    """Send the route's ready claims (as ``claims-server batches send --route`` does), let the
    simulator answer, poll the inbox (the scheduler's ``poll-clearinghouse-inboxes`` job).

    The simulator answers with a 999 and a 277CA on its first pass and the 835 on the
    next; the 835s are posted. Returns what sending did.
    """

    def transport(route: ClearinghouseRoute) -> Any:
        return clearinghouse.route_transport(route, out_dir)

    report = send_ready_claims(factory, route_id=route_id, today=today, transport_factory=transport)
    with factory() as session:
        route = session.get(ClearinghouseRoute, route_id)
        outbox = out_dir / str(route.settings.get("outbox", "edi/outbox"))
        inbox = out_dir / str(route.settings.get("inbox", "edi/inbox"))
    for _ in range(2):  # 999 + 277CA, then the 835 one pass later
        run_once(outbox, inbox)
        clearinghouse.poll_inbox(factory, route_id, transport_factory=transport)
    _post_pending(factory)
    return report


def _demo_route_id(session: Session) -> int:
    return session.scalar(select(ClearinghouseRoute.id).where(ClearinghouseRoute.name == ROUTE_NAME))


def _correct_one(factory: sessionmaker[Session], out_dir: Path, today: date) -> dict[str, Any] | None:
    """Replace the claim denied for a drug line without its NDC (CO-16), then send it."""
    with unit_of_work(factory) as session:
        items = session.scalars(
            select(WorkItem).where(
                WorkItem.queue == WorkQueue.DENIED, WorkItem.status != WorkItemStatus.RESOLVED
            )
        ).all()
        target = next(
            (
                i
                for i in items
                if i.claim is not None
                and "CO-16" in (i.reason_codes or [])
                and any(
                    line.procedure_code.startswith("J") and not line.ndc for line in i.claim.service_lines
                )
            ),
            None,
        )
        if target is None:
            return None
        original = target.claim
        replacement = create_replacement_claim(session, original, reason="NDC added to the drug line")
        for line in replacement.service_lines:
            if line.procedure_code.startswith("J") and not line.ndc:
                line.ndc, line.drug_quantity, line.drug_unit = DEMO_NDC, "1", "ML"
        make_ready(session, replacement, reason="corrected: NDC added")
        result = {
            "original": original.public_id,
            "replacement": replacement.public_id,
            "ref_f8": original.payer_claim_control_number,
        }
        route_id = _demo_route_id(session)
        replacement_id = replacement.id
    _send_and_answer(factory, out_dir, route_id, today)
    with factory() as session:
        result["state"] = session.get(Claim, replacement_id).state.value
    return result


def _bill_secondary(factory: sessionmaker[Session], out_dir: Path, today: date) -> dict[str, Any] | None:
    """Create one next-payer claim and send it through the normal batch with the primary's COB loops.

    The batcher builds it with ``build_cob_edi_claim`` (2320/2330/2430 from the primary's
    835) and validates it like every other claim; a copy of the interchange that carried
    it goes to ``secondary/`` under the demo folder for reading.
    """
    with unit_of_work(factory) as session:
        candidates = claims_needing_next_payer(session)
        if not candidates:
            return None
        candidate = candidates[0]
        nxt = create_next_payer_claim(session, candidate.claim)
        make_ready(session, nxt, reason="billed to the next payer with the prior payer's adjudication")
        result: dict[str, Any] = {
            "claim": nxt.public_id,
            "prior_claim": candidate.claim.public_id,
            "coverage_order": nxt.coverage_order,
            "prior_paid": cents_to_money(candidate.claim_payment.paid_cents),
        }
        claim_id = nxt.id
        route_id = (nxt.coverage.payer.route_id if nxt.coverage.payer else None) or _demo_route_id(session)
    sent = _send_and_answer(factory, out_dir, route_id, today)
    held = next((h for h in sent.held if h.claim_id == claim_id), None)
    with factory() as session:
        carrier = session.scalar(
            select(EdiFile)
            .join(BatchClaim, BatchClaim.batch_id == EdiFile.batch_id)
            .where(
                BatchClaim.claim_id == claim_id,
                EdiFile.batch_id.in_([b.row_id for b in sent.batches]),
                EdiFile.direction == FileDirection.OUTBOUND,
            )
        )
        result["state"] = session.get(Claim, claim_id).state.value
        if carrier is None:
            result.update(file=None, errors=len(held.findings) if held else 0, held=held is not None)
            return result
        content = bytes(carrier.content)
    folder = out_dir / "secondary"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / carrier.stored_name
    path.write_bytes(content)
    report = validate(content)
    result.update(file=str(path), errors=len(report.errors), held=False)
    return result


def continue_day(factory: sessionmaker[Session], out_dir: Path, *, today: date | None = None) -> RemitDay:
    """Steps 1-5 of the module docstring, each in its own transaction."""
    today = today or date.today()
    day = RemitDay()
    with acting_as(system_principal("cli:demo")):
        day.remittances_posted = _post_pending(factory)
        with unit_of_work(factory) as session:
            result = sweep(session, as_of=today)
            day.sweep = {"opened": result.opened, "resolved": result.resolved}
        day.corrected = _correct_one(factory, out_dir, today)
        day.secondary = _bill_secondary(factory, out_dir, today)
        with factory() as session:
            day.queues = {c.queue.value: c.active for c in queue_counts(session)}
            # Today's 835s pay today (BPR16 = DTM*405): the current month to date, as the dashboard.
            ((start, end),) = month_periods(today, 1)
            day.aging = aging_to_json(ar_aging(session, as_of=end, by="payer"))
            day.kpis = kpis_to_json(start, end, kpis(session, start=start, end=end))
            totals = account_totals(session)
            day.ledger_totals = {code: cents_to_money(v) for code, v in sorted(totals.items())}
            day.ledger_balances = sum(totals.values()) == 0
    return day
