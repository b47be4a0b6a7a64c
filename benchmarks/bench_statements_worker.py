"""The Celery app the statement benchmark's workers run (``bench.render_range``: ids in, a count out)."""

from __future__ import annotations

import os

from celery import Celery

from benchmarks.bench_statements import render_range

url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("bench_statements", broker=url, backend=url)
app.conf.update(task_serializer="json", result_serializer="json", worker_prefetch_multiplier=1)


@app.task(name="bench.render_range")
def render_range_task(first: int, last: int) -> int:
    return render_range(first, last)
