"""Charge import benchmark: a charge CSV of N service lines imported as ready claims, on PostgreSQL.

    python benchmarks/bench_charge_import.py                     # 10,000 lines
    python benchmarks/bench_charge_import.py --lines 20000 --patients 1000
    python benchmarks/bench_charge_import.py --database-url postgresql+psycopg://...   # an empty database

Setup (not timed): a fresh PostgreSQL database (created and dropped unless
``--database-url`` names one), migrated; the demo practice (``seed.seed_demo_practice``)
and ``--patients`` more patients with a primary coverage, made through the patient
services; the CSV written by ``tests/charge_files.py`` (one to three lines per claim,
scrub-clean codes, the patients in turn).

Timed: ``claims.charge_import.import_charges`` and the commit: read and parse the CSV,
load the rows it names, validate every claim with the claim schema, build it with
``apply_claim_data``, scrub them all (payer rules, eligibility), store claims, lines and
encrypted diagnoses, and every audit event. Target: >= 2,000 lines/s. The anchor, in the
same run on the same claims: ``submission.services.build_batches`` (read every ready
claim with its relations, scrub, write and validate the 837s, store batches), rolled
back. A small import and batch, rolled back, warm both up first (code sets, the TR3 map,
statement caches), as a long-lived worker would be. The process CPU time and the load
average are printed too: PostgreSQL runs on the same machine.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import seed  # noqa: E402 - benchmarks/ is on the path from here

WARM_UP_CLAIMS = 100


def add_patients(factory, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` more patients of the demo practice, each with an Acme primary coverage (setup)."""
    from datetime import date

    from sqlalchemy import select

    from claims_server.db import unit_of_work
    from claims_server.models import Payer, Practice
    from claims_server.patients import services
    from claims_server.patients.schemas import CoverageSchema, PatientSchema

    patient_schema, coverage_schema = PatientSchema(), CoverageSchema()
    with unit_of_work(factory) as session:
        practice = session.scalar(select(Practice))
        payer = session.scalar(select(Payer).where(Payer.payer_id == "DEMOACME"))
        for n in range(count):
            patient = services.create_patient(
                session,
                patient_schema.load(
                    {
                        "practice": practice.public_id,
                        "account_number": f"BENCH-{n:06d}",
                        "last_name": f"Benchmark{n % 97}",
                        "first_name": f"Pat{n % 89}",
                        "birth_date": date(1950 + n % 50, 1 + n % 12, 1 + n % 28).isoformat(),
                        "sex": "F" if n % 2 else "M",
                        "address_line1": f"{100 + n} Larkspur Lane",
                        "city": "Springfield",
                        "state": "IL",
                        "zip_code": "627040000",
                    }
                ),
            )
            services.create_coverage(
                session,
                patient,
                coverage_schema.load(
                    {
                        "payer": payer.public_id,
                        "coverage_order": 1,
                        "relationship_code": "18",
                        "member_id": f"ACMB{n:08d}",
                        "group_number": "GRPBENCH",
                        "effective_start": "2024-01-01",
                    }
                ),
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000, help="service lines in the file (about)")
    parser.add_argument("--patients", type=int, default=500, help="patients added to the demo practice")
    parser.add_argument(
        "--database-url", default=None, help="an empty PostgreSQL database (default: a new one)"
    )
    args = parser.parse_args(argv)
    url, drop_database = seed.run_database(args.database_url, "bench_charge_import")

    from sqlalchemy import func, select, text

    from claims_server.claims.charge_import import import_charges
    from claims_server.db import make_engine, make_session_factory, unit_of_work
    from claims_server.migrate import upgrade
    from claims_server.models import Claim, ClaimState, ServiceLine
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.submission.services import build_batches
    from tests.charge_files import VISITS, charge_csv_bytes, charge_rows

    try:
        with acting_as(system_principal("bench:charge-import")):
            upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            t0 = time.perf_counter()
            seed.seed_demo_practice(factory)
            add_patients(factory, args.patients)
            per_visit = sum(len(v) for v in VISITS) / len(VISITS)
            claims = max(1, round(args.lines / per_visit))
            with factory() as session:
                rows, facts = charge_rows(session, claims=claims, prefix="BENCH", spread_days=28)
                warm_rows, _ = charge_rows(session, claims=WARM_UP_CLAIMS, prefix="WARM")
            content = charge_csv_bytes(rows)
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
            setup = time.perf_counter() - t0
            # Warm-up (rolled back): what a long-lived server loads once.
            with factory() as session:
                warm = time.perf_counter()
                import_charges(session, io.BytesIO(charge_csv_bytes(warm_rows)), max_bytes=len(content) * 2)
                session.flush()
                build_batches(session)
                session.rollback()
                warm = time.perf_counter() - warm

            start, cpu = time.perf_counter(), time.process_time()
            with unit_of_work(factory) as session:
                report = import_charges(session, io.BytesIO(content), max_bytes=len(content) * 2)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu

            with factory() as session:
                stored = session.scalar(
                    select(func.count()).select_from(Claim).where(Claim.state == ClaimState.READY)
                )
                stored_lines = session.scalar(select(func.count()).select_from(ServiceLine))
                total = session.scalar(select(func.sum(Claim.total_charge_cents)))
            with factory() as session:
                b_start, b_cpu = time.perf_counter(), time.process_time()
                batching = build_batches(session)
                session.flush()
                b_seconds, b_cpu = time.perf_counter() - b_start, time.process_time() - b_cpu
                session.rollback()
            engine.dispose()

            print(
                f"file: {len(content):,} bytes, {facts.lines:,} lines, {facts.claims:,} claims, "
                f"{args.patients + 12:,} patients (PostgreSQL, python {sys.version.split()[0]}; "
                f"setup {setup:.1f} s and warm-up {warm:.1f} s, not timed)"
            )
            exact = total == facts.total_charge_cents and stored_lines == facts.lines
            print(
                f"imported: {report.claims:,} claims ({stored:,} ready), {report.lines:,} lines, "
                f"total equal to the CSV to the cent: {'yes' if exact else 'NO'}"
            )
            print(f"{'measurement':<62} {'seconds':>8} {'lines/s':>9} {'claims/s':>9}")
            print(
                f"{'ours: import_charges (CSV to ready claims, commit)':<62} {seconds:>8.2f} "
                f"{report.lines / seconds:>9,.0f} {report.claims / seconds:>9,.0f}"
            )
            print(
                f"{'anchor: build_batches on the same claims (read to 837s)':<62} {b_seconds:>8.2f} "
                f"{report.lines / b_seconds:>9,.0f} {batching.claims_batched / b_seconds:>9,.0f}"
                f"  ({batching.claims_batched:,} batched, {len(batching.batch_ids)} interchanges)"
            )
            load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
            print(
                f"(import used {cpu:.2f} s of Python CPU: {report.lines / cpu:,.0f} lines per CPU second; "
                f"batching {b_cpu:.2f} s; load average {load})"
            )
            verdict = "met" if report.lines / seconds >= 2000 else "NOT met"
            print(f"target: >= 2,000 lines/s -> {verdict}")
    finally:
        drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
