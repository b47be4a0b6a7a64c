"""837P generation speed: our writer from claim dataclasses vs pyx12's X12Writer, same run.

Usage: ``python benchmarks/bench_837.py [--claims 20000] [--repeat 3]``.
Ours: ``write_837`` from ``Batch837`` (the whole job: loops, HL/LX, counts, checks).
Anchor: pyx12 ``X12Writer.Write`` fed the very same segments as ``pyx12.segment.Segment``
objects (it computes SE/GE/IEA and LX itself), timed with and without building them.
Floor: ≥ 20,000 claims/s for ours on 20,000 claims.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyx12.segment
import pyx12.x12file

from benchmarks.synth_837 import CREATED, synth_batch
from edi.reader import read_text
from edi.x837 import write_837

TARGET_CLAIMS_PER_S = 20_000


def _ours(batch: object) -> tuple[float, str]:
    start = time.perf_counter()
    text = write_837(
        batch,  # type: ignore[arg-type]
        interchange_control=1,
        group_control=1,
        transaction_controls=lambda i: f"{i + 1:04d}",
        when=CREATED,
        usage="T",
    )
    return time.perf_counter() - start, text


def _pyx12(raw_segments: list[str]) -> tuple[float, float, str]:
    """(build+write seconds, write-only seconds, output) for pyx12's X12Writer."""
    start = time.perf_counter()
    built = [pyx12.segment.Segment(s, "~", "*", ":") for s in raw_segments]
    build_s = time.perf_counter() - start
    out = io.StringIO()
    start = time.perf_counter()
    writer = pyx12.x12file.X12Writer(out, "~", "*", ":", "", "^")
    for seg in built:
        writer.Write(seg)
    writer.close()
    write_s = time.perf_counter() - start
    return build_s + write_s, write_s, out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    batch = synth_batch(args.claims)
    ours_times: list[float] = []
    text = ""
    for _ in range(args.repeat):
        seconds, text = _ours(batch)
        ours_times.append(seconds)
    ours = min(ours_times)
    raw = [s.text() for s in read_text(text)]
    pyx12_total, pyx12_write, pyx12_text = _pyx12(raw)

    size = len(text)
    ours_rate = args.claims / ours
    print(f"837P generation, {args.claims:,} claims, {len(raw):,} segments, {size:,} bytes")
    print(
        f"  ours  write_837 (dataclasses -> X12)      {ours:7.3f} s  {ours_rate:10,.0f} claims/s  "
        f"{size / ours / 1e6:6.1f} MB/s  (best of {args.repeat})"
    )
    print(
        f"  pyx12 Segment() + X12Writer.Write          {pyx12_total:7.3f} s  "
        f"{args.claims / pyx12_total:10,.0f} claims/s"
    )
    print(
        f"  pyx12 X12Writer.Write only (prebuilt)      {pyx12_write:7.3f} s  "
        f"{args.claims / pyx12_write:10,.0f} claims/s"
    )
    print(f"  ratio ours / pyx12 (build+write)           {pyx12_total / ours:7.1f}x")
    print(f"  ratio ours / pyx12 (write only)            {pyx12_write / ours:7.1f}x")
    same = [s.text() for s in read_text(pyx12_text)] == raw if pyx12_text.startswith("ISA") else False
    print(f"  pyx12 output identical segment by segment: {same}")
    verdict = "PASS" if ours_rate >= TARGET_CLAIMS_PER_S else "BELOW FLOOR"
    print(f"  floor {TARGET_CLAIMS_PER_S:,} claims/s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
