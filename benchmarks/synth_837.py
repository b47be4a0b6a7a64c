"""Deterministic synthetic 837P batches: fictitious people, Luhn-valid NPIs, ICD-10 codes.

Usage: ``python benchmarks/synth_837.py --claims 20000 --out /tmp/big_837p.txt``.
The same ``--claims``/``--seed`` always give the same file (no clock, seeded RNG), so
benchmarks and tests compare like with like. Two service lines per claim.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edi.claims import (
    Address,
    Batch837,
    BillingProvider,
    Claim,
    ClaimKind,
    Contact,
    Diagnosis,
    Patient,
    Payer,
    Provider,
    Receiver,
    ServiceLine,
    Submitter,
    Subscriber,
)
from edi.identifiers import npi_with_check_digit
from edi.x837 import write_837

LAST_NAMES = (
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "LOPEZ",
    "WILSON",
)
FIRST_NAMES = ("ALEX", "JORDAN", "TAYLOR", "MORGAN", "CASEY", "RILEY", "JAMIE", "AVERY", "QUINN", "DREW")
STREETS = ("MAIN ST", "OAK AVE", "PINE RD", "ELM ST", "MAPLE DR", "CEDAR LN")
# ICD-10-CM billable codes (no dot): hypertension, type 2 diabetes, hyperlipidemia, low back
# pain, acute URI, anxiety, GERD, vitamin D deficiency, knee pain, cough.
DIAGNOSES = ("I10", "E119", "E785", "M545", "J069", "F419", "K219", "E559", "M25561", "R05")
PROCEDURES = (
    ("99213", 12500),
    ("99214", 18000),
    ("36415", 1500),
    ("80053", 4200),
    ("93000", 6000),
    ("81002", 900),
    ("85025", 2800),
    ("90471", 2500),
)
BASE_DATE = date(2024, 1, 2)
CREATED = datetime(2024, 6, 3, 9, 30)


def _npi(rng: random.Random) -> str:
    return npi_with_check_digit(str(rng.randint(100_000_000, 199_999_999)))


def synth_batch(claims: int, *, seed: int = 837, providers: int = 20) -> Batch837:
    """A batch of ``claims`` 837P claims spread over ``providers`` billing providers."""
    rng = random.Random(seed)
    billing = [
        BillingProvider(
            npi=_npi(rng),
            address=Address(
                f"{100 + i} {STREETS[i % len(STREETS)]}", "SPRINGFIELD", "IL", f"62701{1000 + i:04d}"
            ),
            tax_id=f"{rng.randint(100_000_000, 999_999_999)}",
            organization_name=f"SYNTHETIC CLINIC {i + 1}",
            taxonomy="207Q00000X",
        )
        for i in range(providers)
    ]
    payers = [Payer("SYNTHETIC HEALTH PLAN", "SYN01"), Payer("EXAMPLE MUTUAL", "EXM02")]
    out: list[Claim] = []
    for n in range(claims):
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        address = Address(
            f"{rng.randint(1, 9999)} {STREETS[rng.randrange(len(STREETS))]}", "SPRINGFIELD", "IL", "62704"
        )
        subscriber = Subscriber(
            last_name=last,
            first_name=first,
            member_id=f"M{n:09d}",
            birth_date=date(1940 + rng.randrange(60), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            sex="F" if rng.random() < 0.5 else "M",
            address=address,
            group_number=f"G{rng.randint(1000, 9999)}",
        )
        patient = None
        if n % 5 == 4:  # every fifth claim is for a dependent (2000C)
            patient = Patient(
                last_name=last,
                first_name=FIRST_NAMES[(n + 3) % len(FIRST_NAMES)],
                relationship_code="19",
                birth_date=date(2010 + rng.randrange(10), 1 + rng.randrange(12), 1 + rng.randrange(28)),
                sex="M" if rng.random() < 0.5 else "F",
                address=address,
            )
        dx = rng.sample(DIAGNOSES, 2)
        service_date = BASE_DATE + timedelta(days=rng.randrange(150))
        lines = []
        for k, (code, cents) in enumerate(rng.sample(PROCEDURES, 2)):
            lines.append(
                ServiceLine(
                    procedure=code,
                    charge_cents=cents,
                    units=Decimal(1),
                    diagnosis_pointers=(1, 2) if k == 0 else (1,),
                    service_date=service_date,
                    line_control_number=f"L{n:08d}{k + 1}",
                )
            )
        out.append(
            Claim(
                patient_control_number=f"PCN{n:010d}",
                billing_provider=billing[n % providers],
                subscriber=subscriber,
                payer=payers[n % 2],
                patient=patient,
                lines=lines,
                diagnoses=[Diagnosis(code) for code in dx],
                rendering=Provider(npi=_npi(rng), last_name="DOCTOR", first_name=first, taxonomy="207Q00000X")
                if n % 3 == 0
                else None,
            )
        )
    return Batch837(
        submitter=Submitter("SYNTHETIC BILLING", "SUBMIT01", Contact("BILLING DESK", phone="2175550100")),
        receiver=Receiver("SYNTHETIC CLEARINGHOUSE", "CLEAR01"),
        claims=out,
        kind=ClaimKind.PROFESSIONAL,
        created=CREATED,
        reference="SYNTH",
    )


def synth_file(claims: int, *, seed: int = 837) -> str:
    """The batch written as one interchange (control numbers 1, 1, 0001..)."""
    return write_837(
        synth_batch(claims, seed=seed),
        interchange_control=1,
        group_control=1,
        transaction_controls=lambda i: f"{i + 1:04d}",
        when=CREATED,
        usage="T",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=837)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    text = synth_file(args.claims, seed=args.seed)
    args.out.write_text(text, encoding="utf-8")
    print(
        f"wrote {args.claims} claims, {len(text):,} bytes to {args.out} in {time.perf_counter() - start:.2f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
