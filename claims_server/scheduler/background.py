"""The in-process runner of the embedded default: a daemon thread per server process.

``claims-server serve`` starts it in every gunicorn worker after the fork (the
``post_worker_init`` hook of ``claims_server.gunicorn_conf``), or beside Flask's development
server, when ``SCHEDULER`` is ``in-process`` (the default without a broker). Each thread
ticks every few seconds (``jobs.tick_seconds``) and runs the due jobs through
``runner.tick``; the lease in ``scheduled_jobs`` makes each job run once however many workers
tick. Tests' ``create_app`` and the CLI never start it.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from claims_server.app import state
from claims_server.scheduler.jobs import Job, registry, tick_seconds
from claims_server.scheduler.runner import runner_owner, tick

if TYPE_CHECKING:
    from flask import Flask

    from claims_server.config import Settings

log = logging.getLogger(__name__)

_started: SchedulerThread | None = None
_start_lock = threading.Lock()


class SchedulerThread(threading.Thread):
    """Ticks until stopped; an error in a tick is logged and the next tick comes as usual."""

    def __init__(self, factory: sessionmaker[Session], jobs: dict[str, Job], *, interval: float) -> None:
        super().__init__(name="claims-scheduler", daemon=True)
        self.factory = factory
        self.jobs = jobs
        self.interval = interval
        self.owner = ""
        self._stopping = threading.Event()

    def run(self) -> None:
        self.owner = runner_owner("serve")
        # Workers started together would tick in step; a random offset spreads them out.
        if self._stopping.wait(random.uniform(0, min(1.0, self.interval))):
            return
        while True:
            try:
                tick(self.factory, self.jobs, owner=self.owner)
            except Exception as exc:  # the database away for a moment: try again next tick
                log.error("scheduler tick failed", exc_info=exc)
            if self._stopping.wait(self.interval):
                return

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self.join(timeout)


def start_in_process(
    factory: sessionmaker[Session], settings: Settings, *, jobs: dict[str, Job] | None = None
) -> SchedulerThread | None:
    """Start this process's runner if ``SCHEDULER`` says in-process (once per process); it runs
    the registry's jobs as ``settings`` make them, or ``jobs`` when given (tests)."""
    global _started
    if settings.scheduler_mode != "in-process":
        return None
    with _start_lock:
        if _started is not None and _started.is_alive():
            return _started
        jobs = jobs if jobs is not None else registry(settings)
        _started = SchedulerThread(factory, jobs, interval=tick_seconds(jobs))
        _started.start()
    log.info("scheduler started in-process", extra={"tick_seconds": _started.interval})
    return _started


def start_for_app(app: Flask) -> SchedulerThread | None:
    """``start_in_process`` with an app's session factory and settings."""
    app_state = state(app)
    return start_in_process(app_state.session_factory, app_state.settings)
