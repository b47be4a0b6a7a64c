"""10,000 statements (PDF + HTML) rendered by Celery workers; target <= 60 s on 2 cores.

Anchor, measured in the same run: reportlab drawing a blank US-letter page 10,000 times
(the floor of any reportlab statement). The statements are synthetic (invented names,
amounts in cents), 3-6 service lines each; the work is the pure library's
``build_statement`` + ``render_pdf`` + ``render_html``, sent to real Celery workers on
Redis in chunks of ids (``python benchmarks/bench_statements.py [--workers 2]``).
Without Redis it falls back to a process pool of the same size and says so.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas

from statements import (
    Address,
    DunningStage,
    Guarantor,
    LedgerLine,
    Practice,
    ResponsibilityPart,
    StatementInput,
    build_statement,
    render_html,
    render_pdf,
)

AS_OF = date(2026, 3, 2)
PRACTICE = Practice(
    "Larkspur Family Medicine Demo",
    Address("400 Larkspur Lane", "Suite 200", "Springfield", "IL", "627010400"),
    "2175550100",
)
CODES = ("99213", "G0008", "J1100", "99214", "E0114", "A0425")
REASONS = (("1", "Deductible"), ("2", "Coinsurance"), ("3", "Copay"), ("96", "Not covered"))


def synthetic_input(n: int) -> StatementInput:
    """Statement ``n``: deterministic synthetic patient and lines (integer cents)."""
    lines = []
    for k in range(3 + n % 4):
        reason = REASONS[(n + k) % len(REASONS)][0]
        owed = 1000 + (n * 37 + k * 113) % 9000
        since = AS_OF - timedelta(days=(n + 17 * k) % 150)
        lines.append(
            LedgerLine(
                claim_ref=f"C{n:06d}{k // 2}",
                line_ref=f"C{n:06d}:{k}",
                service_date=since,
                provider_name="Jordan Rivera, MD",
                procedure_code=CODES[(n + k) % len(CODES)],
                billed_cents=owed * 4,
                insurance_paid_cents=owed * 2,
                adjustments_cents=owed,
                balance_cents=owed,
                responsible_since=since,
                responsibility=(ResponsibilityPart("PR", reason, owed),),
            )
        )
    return StatementInput(
        statement_date=AS_OF,
        account_number=f"A{n:07d}",
        practice=PRACTICE,
        guarantor=Guarantor(
            f"Synthetic Patient {n}", Address(f"{n} Example Street", None, "Springfield", "IL", "62704")
        ),
        patient_name=f"Synthetic Patient {n}",
        lines=tuple(lines),
    )


def render_range(first: int, last: int) -> int:
    """Build and render statements ``first``..``last``; returns the bytes produced (PDF + HTML)."""
    total = 0
    for n in range(first, last + 1):
        s = build_statement(
            synthetic_input(n), stage=DunningStage(n % 3), step=1 + n % 3, due_date=AS_OF + timedelta(days=21)
        )
        total += len(render_pdf(s)) + len(render_html(s))
    return total


def blank_pages(count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        buffer = io.BytesIO()
        c = Canvas(buffer, pagesize=LETTER, invariant=1, pageCompression=1)
        c.showPage()
        c.save()
    return time.perf_counter() - start


def _celery(count: int, chunk: int, workers: int) -> tuple[float, str] | None:
    import subprocess

    import redis

    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError:
        return None
    from celery import Celery

    app = Celery("bench_statements", broker=url, backend=url)
    app.conf.update(task_serializer="json", result_serializer="json", worker_prefetch_multiplier=1)
    queue = f"bench-statements-{os.getpid()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.bench_statements_worker",
            "worker",
            f"--concurrency={workers}",
            f"--queues={queue}",
            "--loglevel=WARNING",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "BENCH_REDIS_URL": url},
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1.0):
            if time.monotonic() > deadline or worker.poll() is not None:
                return None
        start = time.perf_counter()
        results = [
            app.send_task("bench.render_range", (first, min(first + chunk, count) - 1), queue=queue)
            for first in range(0, count, chunk)
        ]
        produced = sum(r.get(timeout=600) for r in results)
        elapsed = time.perf_counter() - start
        return elapsed, f"Celery, {workers} worker processes on Redis, {produced / 1e6:.0f} MB produced"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=250)
    args = parser.parse_args()
    anchor = blank_pages(args.count)
    measured = _celery(args.count, args.chunk, args.workers)
    if measured is None:
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            ranges = [(f, min(f + args.chunk, args.count) - 1) for f in range(0, args.count, args.chunk)]
            produced = sum(pool.map(render_range, *zip(*ranges, strict=True)))
        measured = (
            time.perf_counter() - start,
            f"process pool of {args.workers} (Redis unavailable), {produced / 1e6:.0f} MB",
        )
    elapsed, how = measured
    print(
        f"statements (PDF + HTML): {args.count} in {elapsed:.1f} s ({args.count / elapsed:.0f}/s) via {how}"
    )
    print(f"anchor, reportlab blank page x {args.count} (1 process): {anchor:.1f} s")
    print(f"target <= 60 s: {'met' if elapsed <= 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
