"""Batching benchmark: 10,000 ready claims → validated 837 interchanges, on PostgreSQL.

Measures ``claims_server.submission.services.build_batches`` end to end (database read
of the claims with every relation, scrub with payer rules, 837 write, validation by our
TR3 map and guide rules, storing batches, files and BatchClaim rows, the bulk
``ready → batched`` transition with its audit event per claim, commit) and prints it
beside two anchors measured in the same run: the raw ``edi.x837.write_837`` rate on the
same claims, and pyx12 validating the first interchange we wrote. Before the timed run,
a 200-claim run (rolled back) loads what a long-lived worker loads once. The process CPU
time and the machine's load average are printed too: PostgreSQL runs on the same
machine, so a busy machine lowers the wall-clock figure.

    python benchmarks/bench_submission.py [--claims 10000] [--database-url postgresql+psycopg://...]

Without --database-url a fresh PostgreSQL database is created on 127.0.0.1 and dropped.
The claims are synthetic: the demo practice's patients and coverages, stored ready.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from contextlib import nullcontext
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from claims_server.claims.to_edi import batch_for, build_edi_claim, claim_load_options
from claims_server.db import make_engine, make_session_factory
from claims_server.demo_seed import seed_practice
from claims_server.migrate import upgrade
from claims_server.models import (
    Claim,
    ClaimDiagnosis,
    ClaimState,
    ClearinghouseRoute,
    Coverage,
    EdiFile,
    EligibilityCheck,
    Provider,
    ServiceLine,
)
from claims_server.security.principal import acting_as, system_principal
from claims_server.submission.services import build_batches
from edi.x837 import write_837

WARM_UP_CLAIMS = 200

VISITS = (
    (("99213", 12_500), ("36415", 1_200)),
    (("99214", 17_500), ("83036", 4_500)),
    (("99212", 8_500),),
)


def seed_claims(factory, count: int) -> None:
    """The demo practice plus ``count`` ready claims (benchmark fixture rows, stored directly)."""
    dos = date.today() - timedelta(days=5)
    with factory() as session, acting_as(system_principal("bench:seed")):
        seed_practice(session)
        session.commit()
        coverages = session.scalars(
            select(Coverage).where(Coverage.coverage_order == 1).order_by(Coverage.id)
        ).all()
        rendering = session.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
        for n in range(count):
            coverage = coverages[n % len(coverages)]
            lines = VISITS[n % len(VISITS)]
            pcn = f"B{n:010d}"
            claim = Claim(
                practice_id=coverage.patient.practice_id,
                patient_id=coverage.patient_id,
                coverage_id=coverage.id,
                patient_control_number=pcn,
                state=ClaimState.READY,
                place_of_service="11",
                total_charge_cents=sum(c for _, c in lines),
                rendering_provider_id=rendering.id,
            )
            claim.diagnoses = [ClaimDiagnosis(position=1, code="I10", qualifier="ABK")]
            claim.service_lines = [
                ServiceLine(
                    line_number=i,
                    line_control_number=f"{pcn}-{i}",
                    procedure_code=code,
                    charge_cents=cents,
                    units="1",
                    diagnosis_pointers="1",
                    service_date_from=dos,
                )
                for i, (code, cents) in enumerate(lines, start=1)
            ]
            session.add(claim)
            if n % 1000 == 999:
                session.commit()
        session.commit()


def seed_eligibility(factory) -> int:
    """Every coverage's last eligibility answer, as the nightly batch leaves it (setup, not timed).

    One 270 for all coverages (``eligibility.services.start_batch``), answered by the
    simulator's payer and received like any inbound 271, so batching scrubs every claim
    with its coverage's facts (read in bulk, the 271 parsed once). Returns the checks answered.
    """
    from claims_server.clearinghouse.services import receive_file
    from claims_server.eligibility.services import start_batch
    from claims_server.simulator.eligibility import answer_270

    with factory() as session, acting_as(system_principal("bench:eligibility")):
        coverages = session.scalars(select(Coverage).order_by(Coverage.id)).all()
        check_ids = start_batch(session, [(c, date.today() - timedelta(days=5)) for c in coverages])
        session.commit()
        request = session.scalar(
            select(EdiFile).where(EdiFile.id == session.get(EligibilityCheck, check_ids[0]).request_file_id)
        )
        kind, text = answer_270(bytes(request.content))
        route_id = request.route_id
    assert kind == "271", kind
    with acting_as(system_principal("bench:eligibility")):
        receive_file(factory, text.encode("ascii"), route_id=route_id)
    with factory() as session:
        answered = session.scalars(
            select(EligibilityCheck.id).where(
                EligibilityCheck.id.in_(check_ids), EligibilityCheck.benefits_summary.is_not(None)
            )
        ).all()
    return len(answered)


def anchor_write_rate(factory, limit: int) -> tuple[float, int]:
    """Raw write_837 claims/s on the same claims (conversion done before timing)."""
    with factory() as session:
        claims = session.scalars(select(Claim).options(*claim_load_options()).limit(limit)).all()
        route = session.scalar(select(ClearinghouseRoute))
        edi_claims = [build_edi_claim(session, c) for c in claims]
        batch = batch_for(claims[0].practice, route, edi_claims)
    start = time.perf_counter()
    text = write_837(
        batch, interchange_control=1, group_control=1, transaction_controls=lambda i: f"{i + 1:04d}"
    )
    return len(edi_claims) / (time.perf_counter() - start), len(text)


def anchor_pyx12(text: str, claims: int) -> float:
    """pyx12 x12n_document claims/s on one interchange we wrote."""
    import pyx12.error_handler
    import pyx12.params
    import pyx12.x12n_document

    param = pyx12.params.params()
    start = time.perf_counter()
    pyx12.x12n_document.x12n_document(
        param=param, src_file=io.StringIO(text), fd_997=io.StringIO(), fd_html=None, fd_xmldoc=None
    )
    return claims / (time.perf_counter() - start)


def run(url: str, count: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    print(f"seeding {count} ready claims ...", flush=True)
    seed_claims(factory, count)
    print(f"eligibility answers stored for {seed_eligibility(factory)} coverages", flush=True)
    with acting_as(system_principal("bench:warm-up")), factory() as session:
        # A batching worker is long-lived: code sets, the TR3 map and SQLAlchemy's statement
        # cache are loaded by its first run. One small run, rolled back, does that here so
        # the figure below is the steady rate; its own time is printed too.
        start = time.perf_counter()
        warm = build_batches(session, limit=WARM_UP_CLAIMS)
        session.rollback()
        warm_elapsed = time.perf_counter() - start
    print(f"warm-up: {warm.claims_batched} claims batched and rolled back in {warm_elapsed:.2f} s")
    with acting_as(system_principal("bench:batch")), factory() as session:
        start, cpu = time.perf_counter(), time.process_time()
        result = build_batches(session)
        session.commit()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        first = session.scalar(select(EdiFile).where(EdiFile.batch_id == result.batch_ids[0]))
        sample = bytes(first.content).decode()
    ours = result.claims_batched / elapsed
    write_rate, _ = anchor_write_rate(factory, count)
    pyx12_rate = anchor_pyx12(sample, sample.count("~CLM*"))
    print(
        f"batched {result.claims_batched} claims into {len(result.batch_ids)} interchanges, "
        f"held {len(result.held)}, in {elapsed:.2f} s"
    )
    print(
        f"build_batches (DB read + scrub + write + validate + store), PostgreSQL: {ours:,.0f} claims/s (target 2,000)"
    )
    print(f"anchor: raw write_837 on the same claims:                          {write_rate:,.0f} claims/s")
    print(f"anchor: pyx12 x12n_document on the first interchange:               {pyx12_rate:,.0f} claims/s")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"(batching used {cpu:.2f} s of Python CPU in {elapsed:.2f} s; load average {load})")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if args.database_url:
        context = nullcontext(args.database_url)
    else:
        from tests.services import fresh_postgres_database

        context = fresh_postgres_database()
    with context as url:
        run(url, args.claims)


if __name__ == "__main__":
    main()
