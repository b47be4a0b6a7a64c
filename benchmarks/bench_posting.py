"""835 posting benchmark: a 25,000-claim remittance posted on PostgreSQL, parse to commit.

    python benchmarks/bench_posting.py                        # 25,000 claims, pyx12 on the same file
    python benchmarks/bench_posting.py --pyx12-claims 5000    # pyx12 on a smaller file, scaled
    python benchmarks/bench_posting.py --database-url postgresql+psycopg://...   # an empty database

Setup (not timed): a fresh PostgreSQL database (created and dropped, unless
``--database-url`` names one), migrated; the demo practice; 25,000 acknowledged claims
(two lines each) whose CLM01 / REF*6R match ``benchmarks/synth_835.py``'s remittance;
the file stored as an inbound ``EdiFile`` (encrypted, SHA-256).

Timed: ``run_posting`` — decrypt, stream-parse, match claims and lines, post the charge
and payment entries (audited, hash-chained), store ClaimPayment/LinePayment/Adjustment
rows, move every claim through the state machine (audited), open a work item per
denial, run the completeness checks, commit. Target: <= 30 s. The anchor, measured in
the same run in a subprocess: pyx12's loop-by-loop read of the same file (about 26 s),
which only reads.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import seed  # noqa: E402 - benchmarks/ is on the path from here


def _setup_claims(factory, claims: int) -> None:  # type: ignore[no-untyped-def]
    """25,000 acknowledged claims matching synth_835 (bulk INSERTs; setup, not timed)."""
    from sqlalchemy import select

    from claims_server.db import unit_of_work
    from claims_server.models import Coverage

    acme_id = seed.seed_demo_practice(factory)
    with unit_of_work(factory) as session:
        counts: dict[int, int] = {}
        for patient_id in session.scalars(select(Coverage.patient_id)):
            counts[patient_id] = counts.get(patient_id, 0) + 1
        coverage = next(
            c
            for c in session.scalars(
                select(Coverage).where(Coverage.payer_id == acme_id).order_by(Coverage.id)
            )
            if counts[c.patient_id] == 1
        )
        practice_id = coverage.patient.practice_id
        for start in range(0, claims, 5000):
            batch = range(start, min(claims, start + 5000))
            seed.insert_acknowledged_claims(
                session,
                batch,
                practice_id=practice_id,
                patient_coverages=[(coverage.patient_id, coverage.id)] * len(batch),
            )


def _post_charges(factory) -> None:  # type: ignore[no-untyped-def]
    """The charge entry of every claim, posted ahead (what submitting the claims would do)."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from claims_server.db import unit_of_work
    from claims_server.ledger.services import claim_charge, ensure_claims_receivable
    from claims_server.models import Claim

    with unit_of_work(factory) as session:
        claims = session.scalars(
            select(Claim).options(selectinload(Claim.service_lines), selectinload(Claim.coverage))
        ).all()
        ensure_claims_receivable(session, [claim_charge(c) for c in claims])


def _pyx12_seconds(path: Path) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_835.py"), "--child", "pyx12", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), int(result["claims"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=25_000)
    parser.add_argument("--pyx12-claims", type=int, default=None, help="claims in pyx12's file (scaled)")
    parser.add_argument("--skip-pyx12", action="store_true")
    parser.add_argument(
        "--precharged",
        action="store_true",
        help="post the claims' charge entries in the setup (as submission would), not in the timed run",
    )
    parser.add_argument(
        "--database-url", default=None, help="an empty PostgreSQL database (default: a new one)"
    )
    args = parser.parse_args(argv)
    url, drop_database = seed.run_database(args.database_url, "bench_posting")

    import synth_835
    from sqlalchemy import text

    from claims_server.db import make_engine, make_session_factory, unit_of_work
    from claims_server.migrate import upgrade
    from claims_server.remittance.services import run_posting, store_835
    from claims_server.security.principal import acting_as, system_principal

    try:
        with tempfile.TemporaryDirectory() as directory, acting_as(system_principal("bench:posting")):
            upgrade(url)
            engine = make_engine(url)
            factory = make_session_factory(engine)
            t0 = time.perf_counter()
            _setup_claims(factory, args.claims)
            if args.precharged:
                _post_charges(factory)
            path = Path(directory) / f"synth_835_{args.claims}.txt"
            with path.open("w", encoding="ascii", newline="") as fh:
                synth_835.write_835(fh, args.claims)
            content = path.read_bytes()
            with unit_of_work(factory) as session:
                file_id = store_835(session, content)[0].id
            # Fresh statistics after the bulk setup, as autovacuum would have gathered them.
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
            setup = time.perf_counter() - t0
            start = time.perf_counter()
            report = run_posting(factory, file_id)
            seconds = time.perf_counter() - start
            summary = report.summary()
            with engine.connect() as conn:
                audit = conn.execute(text("SELECT count(*) FROM audit_events")).scalar()
                entries = conn.execute(text("SELECT count(*) FROM journal_entries")).scalar()
                postings = conn.execute(text("SELECT count(*) FROM postings")).scalar()
            engine.dispose()
            print(
                f"file: {path.name}  {len(content):,} bytes  {args.claims:,} claims  "
                f"(PostgreSQL, python {sys.version.split()[0]}; setup {setup:.1f} s, not timed)"
            )
            print(
                f"posting: status {report.status}, claims posted {summary['claims_posted']:,}, "
                f"queued {summary['claims_queued']:,}, journal entries {entries:,}, postings {postings:,}, "
                f"audit events {audit:,}, checks "
                + ("all passed" if all(c.ok for r in report.remittances for c in r.checks) else "FAILED")
            )
            print(f"{'measurement':<58} {'seconds':>8} {'claims/s':>9}")
            what = "charges posted at setup" if args.precharged else "charges posted in the run"
            print(f"(ours: {what})")
            print(
                f"{'ours: run_posting (parse to commit, audit + encryption on)':<58} "
                f"{seconds:>8.2f} {args.claims / seconds:>9.0f}"
            )
            if not args.skip_pyx12:
                pyx_claims = args.pyx12_claims or args.claims
                pyx_path = path
                if pyx_claims != args.claims:
                    pyx_path = Path(directory) / f"synth_835_{pyx_claims}.txt"
                    with pyx_path.open("w", encoding="ascii", newline="") as fh:
                        synth_835.write_835(fh, pyx_claims)
                pyx_seconds, pyx_read = _pyx12_seconds(pyx_path)
                scaled = pyx_seconds * args.claims / pyx_claims
                label = "anchor: pyx12 X12ContextReader loop-by-loop read only"
                note = (
                    ""
                    if pyx_claims == args.claims
                    else f"  ({pyx_read:,} claims, scaled x{args.claims / pyx_claims:g})"
                )
                print(f"{label:<58} {scaled:>8.2f} {args.claims / scaled:>9.0f}{note}")
            verdict = "met" if seconds <= 30 and report.status == "posted" else "NOT met"
            print(f"target: <= 30 s for {args.claims:,} claims -> {verdict}")
    finally:
        drop_database()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
