"""Eligibility throughput: our 271 validation (X279A1 guide) + parse + summary, next to pyx12.

pyx12 has no 5010 271 map, so its anchor here is what it can do with the same file:
``X12Reader`` (envelope, counts) over every segment. Run: ``python benchmarks/bench_eligibility.py``.
"""

from __future__ import annotations

import io
import sys
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyx12.x12file

from claims_server.simulator.eligibility import answer_inquiry
from edi.validate import validate
from edi.x270 import EligibilityInquiry, Envelope, InquiryParty, Member, ServiceInquiry
from edi.x271 import generate_271, parse_271
from eligibility.summary import summarize

COUNT = 2000


def build() -> bytes:
    payer = InquiryParty("PR", "SUMMIT MUTUAL", "PI", "DEMOSUMMIT")
    provider = InquiryParty("1P", "SYNTHETIC CLINIC", "XX", "1234567893")
    responses = []
    for n in range(COUNT):
        inquiry = EligibilityInquiry(
            f"TRACE{n:06d}",
            "1987654321",
            payer,
            provider,
            Member("SYNTHETIC", f"PERSON{n}", member_id=f"SMT{n:08d}", birth_date=date(1980, 1, 2), sex="F"),
            service_date=date(2026, 3, 3),
            inquiries=(ServiceInquiry(("30",)), ServiceInquiry(("98",))),
        )
        responses.append(answer_inquiry(inquiry))
    envelope = Envelope("PAYER01", "CLINIC01", "PAYER01", "CLINIC01", 1, when=datetime(2026, 3, 2, 8, 0))
    return generate_271(responses, envelope).encode("ascii")


def main() -> None:
    data = build()
    size = len(data) / 1e6
    start = time.perf_counter()
    report = validate(data)
    validated = time.perf_counter() - start
    start = time.perf_counter()
    doc = parse_271(data)
    summaries = [summarize(r, service_types=["98"]) for r in doc.responses]
    parsed = time.perf_counter() - start
    assert report.valid and len(summaries) == COUNT and all(s.status == "active" for s in summaries)
    start = time.perf_counter()
    reader = pyx12.x12file.X12Reader(io.StringIO(data.decode("ascii")))
    segments = sum(1 for _ in reader)
    anchor = time.perf_counter() - start
    print(f"271 file: {COUNT} responses, {size:.2f} MB, {segments} segments")
    print(f"ours  validate (X279A1 guide):    {validated:6.3f} s  {size / validated:6.2f} MB/s")
    print(f"ours  parse + summarize:          {parsed:6.3f} s  {COUNT / parsed:8.0f} responses/s")
    print(f"pyx12 X12Reader (envelope only):  {anchor:6.3f} s  {size / anchor:6.2f} MB/s")


if __name__ == "__main__":
    main()
