"""Work-queue page benchmark: 10,000 open work items on PostgreSQL, one page of 50 with filters
and a sort; target <= 150 ms server time per page.

    python benchmarks/bench_work_queue.py                     # 10,000 items, median of 15 per case
    python benchmarks/bench_work_queue.py --items 20000 --repeat 25
    python benchmarks/bench_work_queue.py --database-url postgresql+psycopg://...   # an empty database

Setup (not timed): a fresh PostgreSQL database (created and dropped, unless
``--database-url`` names one), migrated; the demo practice and its payers; 2,000 synthetic
patients (invented names, encrypted through the ORM like every patient) with a primary
coverage spread over the demo payers; 10,000 acknowledged claims (two lines each, dates of
service over a year) inserted in bulk; each claim's charge entry posted by the real ledger
(``ensure_claims_receivable``: A/R insurance against gross charges); then one open work item
per claim, inserted in bulk: denials (with CARC codes), unpaid, patient-balance, appeal
(with a due date: the appeal deadline) and credit-balance items, opened over 120 days, a
fifth of them assigned. ``ANALYZE`` afterwards, as autovacuum would.

Timed, per case, ``--repeat`` times, the median reported: what the queue page's table costs
the server (``claims_server.workqueue.services``): the page of 50 (``sorted_work_items``:
the filters and the sort in SQL, over the outer joins to claim, coverage, payer, claim
payment, remittance and PLB, the encounter's open A/R as a correlated sum of postings, the
first date of service and the filing deadline), the row facts of those 50
(``item_rows``), and the count of all matching items (``count_work_items``). The patient
sort decrypts the matching items' patients' names (they are encrypted) in Python.

Anchor, measured in the same run for each case: the same filter on ``work_items``' own
columns as a plain ``SELECT`` of the table (no joins, no computed columns), ``ORDER BY id
LIMIT 50``: the floor of reading one page of items with these rows at all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import seed  # noqa: E402 - benchmarks/ is on the path from here

TARGET_MS = 150
PATIENTS = 2_000
REASONS = (["CO-16", "N290"], ["CO-50"], ["CO-97"], ["PR-204"], ["CO-29"], ["CO-197", "N54"])


def _seed(factory: Any, items: int) -> None:
    """Patients, coverages, claims, charge postings and work items (not timed)."""
    from sqlalchemy import insert, select, text
    from sqlalchemy.orm import selectinload

    from claims_server.db import unit_of_work
    from claims_server.ledger.services import claim_charge, ensure_claims_receivable
    from claims_server.models import Claim, Coverage, Patient, Payer, Provider, Role, WorkItem
    from claims_server.models.common import new_public_id
    from claims_server.models.patients import RelationshipToSubscriber
    from claims_server.models.workqueue import WorkItemStatus, WorkQueue
    from claims_server.security.authn import create_user

    seed.seed_demo_practice(factory)
    with unit_of_work(factory) as session:
        provider = session.scalar(
            select(Provider).where(Provider.is_rendering.is_(True)).order_by(Provider.id)
        )
        practice_id, provider_id = provider.practice_id, provider.id
        payer_ids = list(session.scalars(select(Payer.id).order_by(Payer.id)))
        users = [
            create_user(
                session,
                username=f"bench-biller-{n}",
                display_name=f"Bench {n}",
                role=Role.BILLER,
                password="bench-only-password-1",
            )
            for n in range(4)
        ]
        session.flush()
        user_ids = [u.id for u in users]
    patients = min(PATIENTS, items)
    pairs: list[tuple[int, int]] = []
    for start in range(0, patients, 1000):
        batch = range(start, min(patients, start + 1000))
        with unit_of_work(factory) as session:
            rows = [
                Patient(
                    practice_id=practice_id,
                    account_number=f"BENCH-{i:07d}",
                    last_name=f"Synthetic{i % 211:03d}",
                    first_name=f"Patient{i}",
                    birth_date=date(1950, 1, 1) + timedelta(days=i % 20000),
                    sex="FMU"[i % 3],
                )
                for i in batch
            ]
            session.add_all(rows)
            session.flush()
            coverages = [
                Coverage(
                    patient_id=p.id,
                    payer_id=payer_ids[i % len(payer_ids)],
                    coverage_order=1,
                    effective_start=date(2024, 1, 1),
                    member_id=f"BM{i:09d}",
                    relationship_code=RelationshipToSubscriber.SELF,
                )
                for i, p in zip(batch, rows, strict=True)
            ]
            session.add_all(coverages)
            session.flush()
            pairs.extend((p.id, c.id) for p, c in zip(rows, coverages, strict=True))
    for start in range(0, items, 2000):
        batch = range(start, min(items, start + 2000))
        with unit_of_work(factory) as session:
            seed.insert_acknowledged_claims(
                session,
                batch,
                practice_id=practice_id,
                patient_coverages=[pairs[i % len(pairs)] for i in batch],
                rendering_provider_id=provider_id,
            )
    with unit_of_work(factory) as session:
        # Dates of service over a year (synth_835's claims all share one day).
        session.execute(
            text(
                "UPDATE service_lines SET service_date_from = DATE '2024-01-05' + CAST(claim_id % 365 AS INTEGER)"
            )
        )
    with unit_of_work(factory) as session:
        claims = session.scalars(
            select(Claim)
            .options(selectinload(Claim.service_lines), selectinload(Claim.coverage))
            .order_by(Claim.id)
        ).all()
        ensure_claims_receivable(session, [claim_charge(c, latest=date(2024, 6, 1)) for c in claims])
        claim_rows = [(c.id, c.patient_id) for c in claims]
    now = datetime.now(UTC)
    rows = []
    for n, (claim_id, patient_id) in enumerate(claim_rows):
        kind = n % 20
        queue = (
            WorkQueue.APPEAL
            if kind in (0, 1)
            else WorkQueue.CREDIT_BALANCE
            if kind == 2
            else WorkQueue.UNPAID
            if kind in (3, 4, 5)
            else WorkQueue.PATIENT_BALANCE
            if kind in (6, 7)
            else WorkQueue.DENIED
        )
        credit = queue == WorkQueue.CREDIT_BALANCE
        rows.append(
            {
                "public_id": new_public_id(),
                "queue": queue,
                "status": WorkItemStatus.OPEN,
                "dedupe_key": f"bench:{n}",
                "claim_id": None if credit else claim_id,
                "patient_id": patient_id if credit else None,
                "reason_codes": REASONS[n % len(REASONS)] if queue == WorkQueue.DENIED else [],
                "recommended_action": "appeal" if queue in (WorkQueue.DENIED, WorkQueue.APPEAL) else "review",
                "priority": 1 if n % 50 == 0 else 0,
                "assignee_user_id": user_ids[n % len(user_ids)] if n % 5 == 0 else None,
                "due_date": date(2024, 3, 1) + timedelta(days=n % 180) if queue == WorkQueue.APPEAL else None,
                "opened_at": now - timedelta(days=n % 120, minutes=n % 1440),
                "created_at": now,
                "updated_at": now,
            }
        )
    with unit_of_work(factory) as session:
        for start in range(0, len(rows), 2000):
            session.execute(insert(WorkItem), rows[start : start + 2000])


def _cases(session: Any) -> list[tuple[str, Any, int]]:
    """(label, filters, offset) of the pages measured."""
    from sqlalchemy import select

    from claims_server.models import Payer
    from claims_server.models.workqueue import WorkQueue
    from claims_server.workqueue.services import WorkItemFilters

    payer = session.scalar(select(Payer.id).order_by(Payer.id))
    return [
        ("all open, default order (priority, oldest)", WorkItemFilters(), 0),
        ("all open, sort amount desc", WorkItemFilters(sort="amount", order="desc"), 0),
        ("all open, sort filing deadline", WorkItemFilters(sort="filing_deadline"), 0),
        ("all open, sort date of service desc", WorkItemFilters(sort="date_of_service", order="desc"), 0),
        ("all open, sort payer, page 20", WorkItemFilters(sort="payer"), 950),
        ("all open, sort status", WorkItemFilters(sort="status"), 0),
        ("all open, sort patient (names decrypted)", WorkItemFilters(sort="patient"), 0),
        (
            "denied + payer + amount >= 100.00 + age >= 7 d, sort amount desc",
            WorkItemFilters(
                queue=WorkQueue.DENIED,
                payer_id=payer,
                min_amount_cents=10_000,
                min_age_days=7,
                sort="amount",
                order="desc",
            ),
            0,
        ),
        (
            "denied + reason CO-50, sort days in queue desc",
            WorkItemFilters(queue=WorkQueue.DENIED, reason="CO-50", sort="days_in_queue", order="desc"),
            0,
        ),
        ("appeal queue by due date", WorkItemFilters(queue=WorkQueue.APPEAL, sort="due_date"), 0),
        (
            "credit-balance queue, sort amount desc",
            WorkItemFilters(queue=WorkQueue.CREDIT_BALANCE, sort="amount", order="desc"),
            0,
        ),
    ]


def _anchor_select(filters: Any) -> Any:
    """The same filter on ``work_items``' own columns, plain: no joins, ORDER BY id LIMIT 50."""
    from sqlalchemy import String, cast, or_, select

    from claims_server.models import WorkItem
    from claims_server.models.workqueue import WorkItemStatus

    stmt = select(WorkItem).where(
        or_(WorkItem.status == WorkItemStatus.OPEN, WorkItem.status == WorkItemStatus.SNOOZED)
    )
    if filters.queue is not None:
        stmt = stmt.where(WorkItem.queue == filters.queue)
    if filters.reason:
        stmt = stmt.where(cast(WorkItem.reason_codes, String).like(f'%"{filters.reason}"%'))
    return stmt.order_by(WorkItem.id).limit(50)


def _median_ms(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--database-url", default=None, help="an empty PostgreSQL database (default: a new one)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the database (its URL is printed)")
    args = parser.parse_args(argv)
    url, drop_database = seed.run_database(args.database_url, "bench_work_queue")

    from sqlalchemy import func, select, text

    from claims_server.db import make_engine, make_session_factory
    from claims_server.migrate import upgrade
    from claims_server.models import WorkItem
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.workqueue import services

    try:
        with acting_as(system_principal("bench:work-queue")):
            upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            t0 = time.perf_counter()
            with engine.connect() as conn:
                seeded = conn.execute(text("SELECT count(*) FROM work_items")).scalar()
            if not seeded:  # a kept database (--keep, then --database-url) is measured again as it is
                _seed(factory, args.items)
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
                counts = dict(
                    conn.execute(text("SELECT queue, count(*) FROM work_items GROUP BY queue")).all()
                )
                postings = conn.execute(text("SELECT count(*) FROM postings")).scalar()
            setup = time.perf_counter() - t0
            print(
                f"{args.items:,} open work items ({', '.join(f'{q} {n:,}' for q, n in sorted(counts.items()))}); "
                f"{postings:,} postings; PostgreSQL, python {sys.version.split()[0]}; "
                f"setup {setup:.0f} s, not timed; median of {args.repeat}"
            )
            print(f"{'page of 50 (ms, server)':<66} {'ours':>7} {'anchor':>7} {'rows':>6} {'matching':>8}")
            worst = 0.0
            with factory() as session:
                for label, filters, offset in _cases(session):

                    def ours(filters: Any = filters, offset: int = offset) -> tuple[int, int]:
                        session.expunge_all()  # every page reads its rows afresh, as a request does
                        items = services.sorted_work_items(session, filters, offset=offset, limit=50)
                        services.item_rows(session, items)
                        return len(items), services.count_work_items(session, filters)

                    def anchor(filters: Any = filters) -> int:
                        session.expunge_all()
                        return len(session.scalars(_anchor_select(filters)).all())

                    ours(), anchor()  # warm: plans and caches, as a running server has them
                    ours_ms, (rows, matching) = _median_ms(ours, args.repeat)
                    anchor_ms, _ = _median_ms(anchor, args.repeat)
                    worst = max(worst, ours_ms)
                    print(f"{label:<66} {ours_ms:>7.1f} {anchor_ms:>7.1f} {rows:>6} {matching:>8,}")
                    session.rollback()
                # The tiles above the table: per queue, active and snoozed counts, amount, oldest.
                tiles_ms, tiles = _median_ms(lambda: services.queue_counts(session), args.repeat)
                session.rollback()
                plain = select(WorkItem.queue, func.count()).group_by(WorkItem.queue)
                plain_ms, _ = _median_ms(lambda: session.execute(plain).all(), args.repeat)
                session.rollback()
                active = sum(t.active for t in tiles)
                print(
                    f"{'queue tiles (queue_counts; anchor: count(*) GROUP BY queue)':<66} {tiles_ms:>7.1f} "
                    f"{plain_ms:>7.1f} {len(tiles):>6} {active:>8,}"
                )
            engine.dispose()
            print("anchor: SELECT work_items with the same filter on its own columns, ORDER BY id LIMIT 50")
            load = os.getloadavg()
            print(
                f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} during the run"
            )
            verdict = "met" if worst <= TARGET_MS else "NOT met"
            print(
                f"target: <= {TARGET_MS} ms per page with {args.items:,} items (worst case {worst:.1f} ms) -> {verdict}"
            )
            if args.keep:
                print(f"database kept: {url}")
    finally:
        if not args.keep:
            drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
