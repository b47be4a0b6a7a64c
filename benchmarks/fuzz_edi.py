"""Long fuzz run of the validator: the targets of tests/unit/edi/test_fuzz.py, for minutes.

Usage: ``python benchmarks/fuzz_edi.py --seconds 600 [--seed 1]``. Random bytes and
stacked mutations of the seed files (byte flips, truncation, delimiter injection,
duplicated and deleted segments) go through ``edi.validate.validate``; any exception or
malformed report is printed with the input saved under ``--crashes``. With atheris
installed, ``--atheris`` hands the same target to libFuzzer instead.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.edi.test_fuzz import SEEDS, check_validate, mutate


def one_input(rng: random.Random) -> bytes:
    if rng.random() < 0.1:
        return rng.randbytes(rng.randint(0, 800))
    data = rng.choice(SEEDS)
    for _ in range(rng.randint(1, 6)):
        data = mutate(data, rng.randint(0, 4), rng.randint(0, 1 << 20), rng.randint(0, 255))
    return data


def run_random(seconds: float, seed: int, crashes: Path) -> int:
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    runs = failures = 0
    while time.monotonic() < deadline:
        data = one_input(rng)
        runs += 1
        try:
            check_validate(data)
        except Exception as exc:
            failures += 1
            crashes.mkdir(parents=True, exist_ok=True)
            path = crashes / f"crash-{seed}-{runs}.x12"
            path.write_bytes(data)
            print(f"FAIL #{failures}: {type(exc).__name__}: {exc} -> {path}")
    print(f"{runs} inputs in {seconds:.0f}s, {failures} failures")
    return 1 if failures else 0


def run_atheris() -> int:  # pragma: no cover - needs atheris
    import atheris

    def target(data: bytes) -> None:
        check_validate(data)

    atheris.Setup(sys.argv[:1], target)
    atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"))
    parser.add_argument("--atheris", action="store_true", help="use atheris/libFuzzer when installed")
    args = parser.parse_args(argv)
    if args.atheris:
        try:
            return run_atheris()
        except ImportError:
            print("atheris is not installed; running the random fuzzer instead")
    return run_random(args.seconds, args.seed, args.crashes)


if __name__ == "__main__":
    sys.exit(main())
