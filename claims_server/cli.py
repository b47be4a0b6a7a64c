"""The ``claims-server`` command line.

Sub-commands import what they need when they run, so ``claims-server edi ...`` starts
without Flask or the database. Configuration errors print one line naming the setting
and exit 2; they never print a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

import click

from claims_server import __version__
from claims_server.cli_support import config_errors_are_one_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claims-server")
@click.pass_context
def main(ctx: click.Context) -> None:
    """claims-server: US medical billing — claims, X12 EDI, remittances, statements."""
    _take_committed_audit_counts()  # count only what this command appends
    ctx.call_on_close(_checkpoint_after_command)


def _take_committed_audit_counts() -> dict[str, int]:
    # Nothing can have been audited unless the audit module was imported (it keeps the count).
    audit = sys.modules.get("claims_server.security.audit")
    return audit.take_committed_counts() if audit is not None else {}


def _checkpoint_after_command() -> None:
    """One central hook for every command: if it appended audit events, sign a checkpoint of
    the chain head (here and in AUDIT_CHECKPOINT_MIRROR), so none of them stays uncovered."""
    counts = _take_committed_audit_counts()
    if not any(counts.values()):
        return
    from claims_server.config import ConfigError
    from claims_server.security.checkpoints import checkpoint_after_cli_command

    try:
        problems = checkpoint_after_cli_command(_settings(), counts)
    except ConfigError as exc:
        problems = [str(exc)]
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


def _settings() -> Any:
    from claims_server.config import load_settings

    return load_settings()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@config_errors_are_one_line
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP server (gunicorn when installed, else Flask's development server)."""
    from claims_server import create_app
    from claims_server.migrate import upgrade

    settings = _settings()
    if not settings.DATABASE_URL:
        # Embedded default: the SQLite file is ours to keep at the newest schema.
        upgrade(settings.database_url)
    app = create_app()
    gunicorn = shutil.which("gunicorn")
    if gunicorn:
        cmd = [gunicorn, "-w", str(workers), "-b", f"{host}:{port}"]
        # Limits, and problem+json for what gunicorn refuses itself (claims_server.gunicorn_conf).
        cmd += ["-c", "python:claims_server.gunicorn_conf", "claims_server.wsgi:app"]
        # Become gunicorn (exec, not a child): a service manager's SIGTERM must reach the server
        # itself, or stopping this command would leave gunicorn running without a parent.
        os.execv(gunicorn, cmd)
    click.echo("warning: gunicorn is not installed; using Flask's development server", err=True)
    from claims_server.scheduler.background import start_for_app

    start_for_app(app)  # the periodic jobs, when SCHEDULER is in-process (gunicorn: gunicorn_conf)
    app.run(host=host, port=port)


@main.command()
@click.option("--concurrency", default=2, show_default=True, type=int)
@click.option("--queues", default="celery", show_default=True)
@config_errors_are_one_line
def worker(concurrency: int, queues: str) -> None:
    """Run a Celery worker (needs CELERY_BROKER_URL)."""
    settings = _settings()
    if settings.tasks_eager:
        click.echo(
            "configuration error: CELERY_BROKER_URL: not set, so tasks run in-process; "
            "set it (e.g. redis://127.0.0.1:6379/0) to run workers",
            err=True,
        )
        sys.exit(2)
    from claims_server.app import check_database
    from claims_server.db import make_engine
    from claims_server.logs import configure_logging
    from claims_server.tasks.celery_app import configure_celery

    check_database(make_engine(settings.database_url))
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    app = configure_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            "--loglevel=INFO",
            "--without-gossip",
        ]
    )


@main.group()
def db() -> None:
    """Database schema: upgrade, downgrade, current."""


@db.command("upgrade")
@click.argument("revision", default="head")
@config_errors_are_one_line
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from claims_server.migrate import current, upgrade

    url = _checked_database_url()
    before = current(url)
    upgrade(url, revision)
    after = current(url)
    click.echo(f"database at revision {after}")
    if any(_revision_number(before) < number <= _revision_number(after) for number in ENCRYPTING_REVISIONS):
        # A revision cannot encrypt (it has no key): values of a column it made encrypted are
        # sealed here, with their blind indexes, so no row is left unreadable or unindexed.
        from claims_server.security.cli import seal_clear_values

        sealed = seal_clear_values()
        click.echo(f"sealed {sealed} values written in clear before their column was encrypted")


#: Revisions that turned clear columns into encrypted ones (0003_phi_gaps, 0009_claim_notes).
ENCRYPTING_REVISIONS = (3, 9)


def _revision_number(revision: str | None) -> int:
    """``0009_claim_notes`` -> 9; no revision (an empty database) -> 0."""
    head = (revision or "")[:4]
    return int(head) if head.isdigit() else 0


@db.command("downgrade")
@click.argument("revision", default="-1")
@config_errors_are_one_line
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (default: one step; 'base' removes everything)."""
    from claims_server.migrate import current, downgrade

    url = _checked_database_url()
    downgrade(url, revision)
    click.echo(f"database at revision {current(url) or 'base'}")


@db.command("current")
@config_errors_are_one_line
def db_current() -> None:
    """Print the schema revision the database is at."""
    from claims_server.migrate import current

    click.echo(current(_checked_database_url()) or "base (empty)")


def _checked_database_url() -> str:
    from pathlib import Path

    from claims_server.app import check_database
    from claims_server.db import make_engine

    settings = _settings()
    Path(settings.INSTANCE_PATH).mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        check_database(engine)
    finally:
        engine.dispose()
    return settings.database_url


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print a machine-readable summary")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="where the day's EDI files go (default: INSTANCE_PATH/demo)",
)
@config_errors_are_one_line
def demo(as_json: bool, out_dir: str | None) -> None:
    """Seed a synthetic practice, then run a billing day: claims, scrub, 837s, 999s, 277CAs, 835s."""
    from pathlib import Path

    from claims_server.demo import run_demo

    url = _checked_database_url()
    target = Path(out_dir) if out_dir else Path(_settings().INSTANCE_PATH) / "demo"
    summary = run_demo(url, target.resolve())
    if as_json:
        click.echo(json.dumps(summary.to_json_dict(), indent=2))
    else:
        click.echo(summary.describe())
        click.echo(
            "\nsee it in the browser:\n"
            "  claims-server users create alice --role biller --password 'a long passphrase'\n"
            "  claims-server serve --port 8000   # then open http://127.0.0.1:8000/ and sign in as alice"
        )


def _register_edi() -> None:
    from claims_server.cli_edi import edi_group

    main.add_command(edi_group, "edi")


_register_edi()


def _register_security() -> None:
    from claims_server.security.cli import audit_group, keys_group, tokens_group, users_group

    for group in (keys_group, audit_group, users_group, tokens_group):
        main.add_command(group)


_register_security()


def _register_claims() -> None:
    from claims_server.claims.cli import claims_group

    main.add_command(claims_group, "claims")


_register_claims()


def _register_submission() -> None:
    from claims_server.clearinghouse.cli import clearinghouse_group
    from claims_server.simulator.cli import simulator_group

    main.add_command(clearinghouse_group, "clearinghouse")
    main.add_command(simulator_group, "simulator")


_register_submission()


def _register_batches() -> None:
    from claims_server.submission.cli import batches_group

    main.add_command(batches_group, "batches")


_register_batches()


def _register_remittance() -> None:
    from claims_server.remittance.cli import remittance_group

    main.add_command(remittance_group, "remittance")


_register_remittance()


def _register_workqueue() -> None:
    from claims_server.workqueue.cli import workqueue_group

    main.add_command(workqueue_group, "workqueue")


_register_workqueue()


def _register_appeals() -> None:
    from claims_server.corrections.cli import appeals_group

    main.add_command(appeals_group, "appeals")


_register_appeals()


def _register_approvals() -> None:
    from claims_server.ledger.cli import approvals_group

    main.add_command(approvals_group, "approvals")


_register_approvals()


def _register_credits() -> None:
    from claims_server.ledger.credits_cli import credits_group

    main.add_command(credits_group, "credits")


_register_credits()


def _register_eligibility() -> None:
    from claims_server.eligibility.cli import eligibility_group

    main.add_command(eligibility_group, "eligibility")


_register_eligibility()


def _register_statements() -> None:
    from claims_server.statements.cli import statements_group

    main.add_command(statements_group, "statements")


_register_statements()


def _register_statements_delivery() -> None:
    from claims_server.payments.cli import email_command, payments_group, print_batch_command
    from claims_server.statements.cli import statements_group

    main.add_command(payments_group, "payments")
    # Delivery commands join the statements group: ``claims-server statements print-batch|email``.
    statements_group.add_command(print_batch_command)
    statements_group.add_command(email_command)


_register_statements_delivery()


def _register_maintenance() -> None:
    from claims_server.maintenance_cli import maintenance_group

    main.add_command(maintenance_group, "maintenance")


_register_maintenance()


def _register_fee_schedule() -> None:
    from claims_server.practice.cli import fee_schedule_group

    main.add_command(fee_schedule_group, "fee-schedule")


_register_fee_schedule()


def _register_scheduler() -> None:
    from claims_server.scheduler.cli import beat_command, scheduler_group

    main.add_command(scheduler_group, "scheduler")
    main.add_command(beat_command, "beat")


_register_scheduler()
