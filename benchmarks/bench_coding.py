"""Benchmark coding/: code-set load time, lookup latency, scrub throughput.

    python benchmarks/bench_coding.py [--ptp-rows 3000000] [--claims 20000]

Load time is measured in a fresh interpreter per run (median of 5), next to the anchor:
importing ``simple_icd_10_cm`` (the package our ICD-10-CM export comes from) the same
way in the same run. Scrub throughput uses typical claims (3 diagnoses, 3 lines) with
PTP and MUE on, against a synthetic PTP table of ~3 million rows built here.
Targets: load < 100 ms, lookup < 5 us, scrub >= 10,000 claims/s single process.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
import timeit
from datetime import date
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coding import hcpcs, icd10cm, ncci  # noqa: E402
from coding.scrubber import CodeSets, Scrubber  # noqa: E402
from edi.claims import Address, BillingProvider, Claim, Diagnosis, Payer, Provider, ServiceLine, Subscriber  # noqa: E402
from edi.identifiers import npi_with_check_digit  # noqa: E402

LOAD_OURS = (
    "import time; t = time.perf_counter(); "
    "from coding import icd10cm, hcpcs; icd10cm.load(); hcpcs.load(); "
    "print((time.perf_counter() - t) * 1000)"
)
LOAD_ANCHOR = (
    "import time; t = time.perf_counter(); import simple_icd_10_cm; print((time.perf_counter() - t) * 1000)"
)


def subprocess_ms(code: str, runs: int = 5) -> float:
    """Median wall time (ms) the snippet reports, each run in a fresh interpreter."""
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
        )
        results.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(results)


def per_call_us(function: object, number: int = 200_000) -> float:
    return timeit.timeit(function, number=number) / number * 1e6  # type: ignore[arg-type]


EM = ["99212", "99213", "99214", "99215"]
OTHERS = ["93000", "36415", "81002", "96372", "20610", "71046", "85025", "80053", "J3301", "G0008", "90471"]
DX = ["E119", "I10", "Z794", "E785", "J069", "R519", "K219", "F419", "N390", "J45909", "M25561", "R079"]


def synthetic_ptp(rows: int, seed: int = 1) -> ncci.PtpStore:
    """~``rows`` PTP rows over CPT-like and HCPCS codes; pairs repeat under several windows."""
    rng = random.Random(seed)
    universe = [f"{n:05d}" for n in range(10021, 99499, 3)] + hcpcs.load().codes()[:6000]
    universe += EM + OTHERS
    builder = ncci.PtpBuilder()
    rationales = ["Mutually exclusive procedures", "Standards of medical / surgical practice", "CPT Manual"]
    added = 0
    while added < rows:
        column1, column2 = rng.choice(universe), rng.choice(universe)
        windows = rng.choice((1, 1, 2, 3))
        start = 19960101 + rng.randrange(0, 25) * 10000
        for w in range(windows):
            effective = start + w * 20000
            deleted = effective + 20000 if w < windows - 1 else None
            builder.add(
                column1, column2, effective, deleted, rng.choice((0, 1, 1, 9)), False, rng.choice(rationales)
            )
            added += 1
    # Edits the typical claims will actually hit.
    for em in EM:
        builder.add(em, "96372", 20130101, None, 1, False, "Separate evaluation and management service")
    builder.add("93000", "93005", 20010101, None, 0, False, "Mutually exclusive procedures")
    return builder.build()


def synthetic_mue() -> ncci.MueTable:
    codes = EM + OTHERS
    return ncci.MueTable(
        {c: ncci.Mue(c, 4 if c not in EM else 1, 2 if c in EM else 3, "synthetic") for c in codes}
    )


def typical_claims(count: int, seed: int = 2) -> list[Claim]:
    rng = random.Random(seed)
    billing = BillingProvider(
        npi=npi_with_check_digit("123456789"),
        address=Address("100 Main St", "Austin", "TX", "787011234"),
        tax_id="123456789",
        organization_name="Synthetic Clinic",
        taxonomy="207Q00000X",
    )
    rendering = Provider(npi=npi_with_check_digit("198765432"), last_name="Doe", taxonomy="207Q00000X")
    claims = []
    for n in range(count):
        dos = date(2026, 1, 5 + n % 20)
        dx = rng.sample(DX, 3)
        codes = [rng.choice(EM), *rng.sample(OTHERS, 2)]
        lines = [
            ServiceLine(
                code,
                rng.randrange(1000, 20000),
                units=Decimal(1),
                modifiers=("25",) if i == 0 else (),
                diagnosis_pointers=(1, 2) if i == 0 else (i + 1,),
                service_date=dos,
            )
            for i, code in enumerate(codes)
        ]
        claims.append(
            Claim(
                patient_control_number=f"BENCH{n:08d}",
                billing_provider=billing,
                subscriber=Subscriber(
                    "Synthetic",
                    f"M{n:09d}",
                    first_name="Pat",
                    birth_date=date(1970, 1, 1 + n % 28),
                    sex="FM"[n % 2],
                    address=Address("1 Elm St", "Austin", "TX", "78701"),
                ),
                payer=Payer("Synthetic Plan", "SYN01"),
                lines=lines,
                diagnoses=[Diagnosis(c) for c in dx],
                rendering=rendering,
            )
        )
    return claims


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ptp-rows", type=int, default=3_000_000)
    parser.add_argument("--claims", type=int, default=20_000)
    args = parser.parse_args()

    print("== code-set load (fresh interpreter, median of 5) ==")
    ours = subprocess_ms(LOAD_OURS)
    anchor = subprocess_ms(LOAD_ANCHOR)
    print(f"  ours: ICD-10-CM + HCPCS load          {ours:8.1f} ms   (target < 100 ms)")
    print(f"  anchor: import simple_icd_10_cm       {anchor:8.1f} ms   ({anchor / ours:.0f}x slower)")

    icd = icd10cm.load().latest
    codes = hcpcs.load()
    print("== lookup latency ==")
    print(f"  ICD-10-CM is_billable('E119')         {per_call_us(lambda: icd.is_billable('E119')):8.3f} us")
    print(f"  ICD-10-CM is_billable('E11.9')        {per_call_us(lambda: icd.is_billable('E11.9')):8.3f} us")
    dos = date(2026, 1, 5)
    print(
        f"  HCPCS is_valid('G2211', dos)          {per_call_us(lambda: codes.is_valid('G2211', dos)):8.3f} us"
    )

    started = time.perf_counter()
    store = synthetic_ptp(args.ptp_rows)
    build_s = time.perf_counter() - started
    print(f"== PTP store: {len(store):,} rows built in {build_s:.1f} s ==")
    print(
        f"  PTP edit_for hit                      {per_call_us(lambda: store.edit_for('99213', '96372', dos)):8.3f} us"
    )
    print(
        f"  PTP edit_for miss                     {per_call_us(lambda: store.edit_for('99213', '93000', dos)):8.3f} us"
    )

    sets = CodeSets(icd10cm.load(), codes, ptp=store, mue=synthetic_mue())
    scrubber = Scrubber(sets)
    claims = typical_claims(args.claims)
    today = date(2026, 2, 1)
    for claim in claims[:200]:
        scrubber.scrub(claim, today=today)
    started = time.perf_counter()
    flagged = 0
    for claim in claims:
        flagged += any(f.blocks_submission for f in scrubber.scrub(claim, today=today))
    elapsed = time.perf_counter() - started
    print("== scrub throughput (3 dx, 3 lines, PTP + MUE on) ==")
    print(f"  {len(claims):,} claims in {elapsed:.2f} s: {len(claims) / elapsed:,.0f} claims/s "
          f"({elapsed / len(claims) * 1e6:.0f} us/claim; target >= 10,000/s); {flagged} with errors")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
