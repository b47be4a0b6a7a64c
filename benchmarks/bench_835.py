"""835 parsing benchmark: our streaming iter_835 next to pyx12 on the same file, same run.

    python benchmarks/bench_835.py                       # 25,000 claims, pyx12 on the same file
    python benchmarks/bench_835.py --pyx12-claims 5000   # smaller file for the slow anchor

Each measurement runs in a fresh subprocess so its peak RSS (ru_maxrss) is its own;
tracemalloc's peak (Python allocations only) is measured in a separate pass because
tracing slows parsing down. Targets: >= 20 MB/s and < 100 MB peak on 25,000 claims.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _child_ours(path: str, trace: bool) -> dict[str, object]:
    from edi.x835 import ClaimPayment, RemittanceEnd, iter_835

    if trace:
        import tracemalloc

        tracemalloc.start()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    claims = 0
    balanced = True
    for event in iter_835(path):
        if isinstance(event, ClaimPayment):
            claims += 1
        elif isinstance(event, RemittanceEnd):
            balanced = balanced and event.balanced
    seconds = time.perf_counter() - start
    result: dict[str, object] = {
        "seconds": seconds,
        "claims": claims,
        "balanced": balanced,
        "rss_before_kb": rss_before,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if trace:
        import tracemalloc

        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
    return result


def _child_pyx12(path: str) -> dict[str, object]:
    import pyx12.error_handler
    import pyx12.params
    import pyx12.x12context

    param = pyx12.params.params()
    errh = pyx12.error_handler.errh_list()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    claims = 0
    with pyx12.x12context.X12ContextReader(param, errh, path) as src:
        for node in src.iter_segments("2100"):
            if node.id == "2100":
                claims += 1
                node.get_value("CLP04")
    return {
        "seconds": time.perf_counter() - start,
        "claims": claims,
        "rss_before_kb": rss_before,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _run_child(kind: str, path: Path, *extra: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _make(claims: int, directory: str) -> Path:
    import synth_835

    path = Path(directory) / f"synth_835_{claims}.txt"
    with path.open("w", encoding="ascii", newline="") as fh:
        synth_835.write_835(fh, claims)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=25_000)
    parser.add_argument(
        "--pyx12-claims", type=int, default=None, help="claims in pyx12's file (default: same)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of our parser; the best is reported")
    parser.add_argument("--skip-pyx12", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, path = args.child
        result = _child_ours(path, args.trace) if kind == "ours" else _child_pyx12(path)
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory() as directory:
        ours_file = _make(args.claims, directory)
        size = ours_file.stat().st_size
        runs = [_run_child("ours", ours_file) for _ in range(max(1, args.repeat))]
        best = min(runs, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
        traced = _run_child("ours", ours_file, "--trace")
        ours_mbs = size / 1e6 / float(best["seconds"])  # type: ignore[arg-type]
        print(
            f"file: {ours_file.name}  {size:,} bytes  {args.claims:,} claims  (python {sys.version.split()[0]})"
        )
        print(f"{'parser':<44} {'seconds':>8} {'MB/s':>8} {'peak RSS':>10} {'py heap':>9}")
        print(
            f"{'ours edi.x835.iter_835':<44} {float(best['seconds']):>8.3f} {ours_mbs:>8.2f} "  # type: ignore[arg-type]
            f"{int(best['peak_rss_kb']) / 1024:>8.1f}MB {int(traced['tracemalloc_peak']) / 1e6:>7.1f}MB"  # type: ignore[call-overload]
        )
        verdict_ok = best["claims"] == args.claims and best["balanced"]
        pyx12_mbs = None
        if not args.skip_pyx12:
            pyx12_claims = args.pyx12_claims or args.claims
            pyx12_file = ours_file if pyx12_claims == args.claims else _make(pyx12_claims, directory)
            anchor = _run_child("pyx12", pyx12_file)
            pyx12_size = pyx12_file.stat().st_size
            pyx12_mbs = pyx12_size / 1e6 / float(anchor["seconds"])  # type: ignore[arg-type]
            label = "pyx12 X12ContextReader.iter_segments('2100')"
            print(
                f"{label:<44} {float(anchor['seconds']):>8.3f} {pyx12_mbs:>8.2f} "  # type: ignore[arg-type]
                f"{int(anchor['peak_rss_kb']) / 1024:>8.1f}MB {'':>9}"  # type: ignore[call-overload]
                + (f"  ({pyx12_claims:,} claims, {pyx12_size:,} bytes)" if pyx12_file != ours_file else "")
            )
            verdict_ok = verdict_ok and anchor["claims"] == pyx12_claims
            print(f"speed-up: {ours_mbs / pyx12_mbs:.1f}x")
        peak_mb = int(best["peak_rss_kb"]) / 1024  # type: ignore[call-overload]
        print(
            f"targets: >= 20 MB/s -> {'met' if ours_mbs >= 20 else 'NOT met'}; "
            f"< 100 MB peak -> {'met' if peak_mb < 100 else 'NOT met'}; "
            f"claims read and balanced -> {'yes' if verdict_ok else 'NO'}"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
