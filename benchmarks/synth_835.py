"""Deterministic synthetic 835 (005010X221A1) generator: fictitious, balanced, any size.

Every claim has two service lines (SVC) with contractual (CO-45) and patient
responsibility (PR-1/2/3) adjustments; every 10th claim is denied (CLP02 = 4, CO-50
with a remark code), every 25th is a secondary payment (CLP02 = 2, OA-23). One PLB
carries interest (L6, increases the payment) and a recovered overpayment (WO, reduces
it), and BPR02 = sum(CLP04) - sum(PLB), so a correct parser reports no balancing finding.

    python benchmarks/synth_835.py 25000 /tmp/big_835.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edi.identifiers import npi_with_check_digit

PAYEE_NPI = npi_with_check_digit("123456789")
RENDERING_NPI = npi_with_check_digit("198765432")
_PROCEDURES = ("99213", "99214", "85025", "80053", "93000", "71046", "36415", "97110")


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def _claim_segments(i: int) -> tuple[list[str], int]:
    """Segments of claim ``i`` and its paid amount in cents (CLP04)."""
    status = "4" if i % 10 == 9 else ("2" if i % 25 == 24 else "1")
    segments: list[str] = []
    lines: list[list[str]] = []
    total_charge = total_paid = patient_resp = 0
    for k in range(2):
        charge = 5_000 + (i * 37 + k * 1_913) % 45_000
        procedure = _PROCEDURES[(i + k) % len(_PROCEDURES)]
        line = [f"SVC*HC:{procedure}{':25' if (i + k) % 7 == 0 else ''}*{_money(charge)}"]
        if status == "4":
            paid = 0
            line[0] += "*0**1"
            line += [
                "DTM*472*20240105",
                f"CAS*CO*50*{_money(charge)}",
                f"REF*6R*{i:07d}-{k + 1}",
                "LQ*HE*N115",
            ]
        else:
            contractual = charge * 30 // 100
            reason = "123"[(i + k) % 3]
            owed = (charge - contractual) * 20 // 100
            if status == "2":
                prior = (charge - contractual) // 2
                paid = charge - contractual - owed - prior
                cas = [
                    f"CAS*CO*45*{_money(contractual)}",
                    f"CAS*OA*23*{_money(prior)}",
                    f"CAS*PR*{reason}*{_money(owed)}",
                ]
            else:
                paid = charge - contractual - owed
                cas = [f"CAS*CO*45*{_money(contractual)}", f"CAS*PR*{reason}*{_money(owed)}*1"]
            patient_resp += owed
            line[0] += f"*{_money(paid)}**1"
            line += [
                "DTM*472*20240105",
                *cas,
                f"REF*6R*{i:07d}-{k + 1}",
                f"AMT*B6*{_money(charge - contractual)}",
            ]
        total_charge += charge
        total_paid += paid
        lines.append(line)
    segments.append(
        f"CLP*PCN{i:09d}*{status}*{_money(total_charge)}*{_money(total_paid)}*"
        f"{_money(patient_resp) if patient_resp else ''}*12*PCCN{i:011d}*11*1"
    )
    segments.append(f"NM1*QC*1*SYNTHETIC*PATIENT*{chr(65 + i % 26)}***MI*MBR{i:09d}")
    if i % 5 == 0:
        segments.append(f"NM1*82*1*RENDERER*TEST****XX*{RENDERING_NPI}")
    if status == "4":
        segments.append("MOA***MA130")
    segments += ["DTM*232*20240105", "DTM*233*20240105"]
    for line in lines:
        segments += line
    return segments, total_paid


def iter_835_segments(claims: int, *, control_number: int = 1) -> Iterator[str]:
    """All segments (without terminators) of an interchange holding one 835."""
    yield (
        "ISA*00*          *00*          *ZZ*SYNTHPAYER     *ZZ*SYNTHPROVIDER  *240110*1200*^*00501*"
        f"{control_number:09d}*0*T*:"
    )
    yield f"GS*HP*SYNTHPAYER*SYNTHPROVIDER*20240110*1200*{control_number}*X*005010X221A1"
    total_paid = 0
    plb_interest, plb_recovery = -1_234, 5_678
    # BPR02 is only known after the claims: a first pass computes the total (the claims
    # are a pure function of their index), so nothing is held in memory.
    for i in range(claims):
        total_paid += _claim_segments(i)[1]
    payment = total_paid - (plb_interest + plb_recovery)
    header = [
        "ST*835*0001",
        f"BPR*I*{_money(payment)}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20240110",
        "TRN*1*SYNTHTRACE0001*1512345678",
        "DTM*405*20240110",
        "N1*PR*SYNTHETIC HEALTH PLAN",
        "N3*100 EXAMPLE AVENUE",
        "N4*ANYTOWN*PA*191030000",
        "REF*2U*99999",
        "PER*BL*PROVIDER SERVICES*TE*8005550100",
        f"N1*PE*SYNTHETIC MEDICAL GROUP*XX*{PAYEE_NPI}",
        "N3*200 SAMPLE STREET",
        "N4*ANYTOWN*PA*191030001",
        "REF*TJ*999999999",
        "LX*1",
    ]
    count = 0
    for segment in header:
        count += 1
        yield segment
    for i in range(claims):
        for segment in _claim_segments(i)[0]:
            count += 1
            yield segment
    yield f"PLB*{PAYEE_NPI}*20241231*L6:INTEREST*{_money(plb_interest)}*WO:OVERPAY{control_number}*{_money(plb_recovery)}"
    count += 2
    yield f"SE*{count}*0001"
    yield f"GE*1*{control_number}"
    yield f"IEA*1*{control_number:09d}"


def write_835(out: TextIO, claims: int, *, line_breaks: bool = False) -> None:
    terminator = "~\n" if line_breaks else "~"
    buffer: list[str] = []
    for segment in iter_835_segments(claims):
        buffer.append(segment)
        if len(buffer) >= 4096:
            out.write(terminator.join(buffer) + terminator)
            buffer.clear()
    if buffer:
        out.write(terminator.join(buffer) + terminator)


def generate_835(claims: int, *, line_breaks: bool = False) -> str:
    terminator = "~\n" if line_breaks else "~"
    return terminator.join(iter_835_segments(claims)) + terminator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("claims", type=int)
    parser.add_argument("output", type=Path)
    parser.add_argument("--line-breaks", action="store_true", help="newline after each segment")
    args = parser.parse_args(argv)
    with args.output.open("w", encoding="ascii", newline="") as fh:
        write_835(fh, args.claims, line_breaks=args.line_breaks)
    print(f"{args.output}: {args.output.stat().st_size:,} bytes, {args.claims:,} claims")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
