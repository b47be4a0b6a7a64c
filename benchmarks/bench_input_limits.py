"""The input-limits check (claims_server.api_common.limits) on a typical API body.

    python benchmarks/bench_input_limits.py [--repeat 2000] [--lines 6]

Every JSON body to the API, FHIR and the workspace is parsed once by the check (exact
numbers, depth, item counts, NUL / lone surrogates, numbers beyond a column, Unicode NFC)
before any view reads it. This measures that check on a claim body of realistic size next
to the anchor, a plain ``json.loads`` of the same bytes, in the same run: the ratio is what
the check adds per request. Target: the check costs at most 1 ms per body and at most
10x ``json.loads`` (a request's whole budget on the hello-world anchor is about 0.6 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MASTER_KEY", "YmVuY2htYXJrLW9ubHktbWFzdGVyLWtleS0zMmJ5dGU=")


def claim_body(
    lines: int, note: str = "Zo\u00eb seen for follow-up; r\u00e9sum\u00e9 of care attached"
) -> bytes:
    """A claim as the API takes it: header, three diagnoses, ``lines`` service lines, text with accents."""
    return json.dumps(
        {
            "patient": "pat_" + "a" * 28,
            "coverage": "cov_" + "b" * 28,
            "billing_provider": "prv_" + "c" * 28,
            "rendering_provider": "prv_" + "d" * 28,
            "place_of_service": "11",
            "frequency_code": "1",
            "note": note,
            "diagnoses": [{"code": code} for code in ("E11.9", "I10", "Z79.4")],
            "lines": [
                {
                    "procedure_code": "99213",
                    "modifiers": ["25"],
                    "units": "1",
                    "charge": "125.00",
                    "service_date": "2026-11-30",
                    "diagnosis_pointers": [1, 2],
                    "ndc": None,
                }
                for _ in range(lines)
            ],
        }
    ).encode()


def per_call(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=6)
    args = parser.parse_args()

    from claims_server import create_app
    from claims_server.api_common.limits import _check_tree, parse_json
    from claims_server.migrate import upgrade

    body = claim_body(args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tmp})
        with app.app_context():
            anchor = per_call(lambda: json.loads(body), args.repeat)
            ours = per_call(lambda: _check_tree(parse_json(body)), args.repeat)
            # The same text typed with combining accents (not NFC): the full walk builds the NFC copy.
            decomposed = claim_body(args.lines, note="Zoe\u0308 seen for follow-up; re\u0301sume\u0301")
            slow = per_call(lambda: _check_tree(parse_json(decomposed)), args.repeat)
    print(f"body: {len(body)} bytes ({args.lines} service lines)")
    print(f"anchor  json.loads                 {anchor * 1e6:8.1f} us/body")
    print(f"ours    parse_json + _check_tree   {ours * 1e6:8.1f} us/body   ({ours / anchor:.1f}x the anchor)")
    print(f"        (a body that needs NFC     {slow * 1e6:8.1f} us/body   ({slow / anchor:.1f}x))")
    verdict = "ok" if ours <= 1e-3 and ours / anchor <= 10 else "MISSED"
    print(f"target  <= 1000 us and <= 10x the anchor: {verdict}")


if __name__ == "__main__":
    main()
