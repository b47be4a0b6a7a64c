"""The billing day's periodic jobs: one registry (``jobs``), one way to run a job (``runner``).

Three clocks drive the same ``runner.run_job``: a thread in each ``claims-server serve``
worker (``background``, the embedded default), ``claims-server beat`` (Celery beat, each entry
the ``claims_server.scheduler.run_job`` task) and ``claims-server scheduler tick`` (cron).
See docs/scheduler.md.
"""
