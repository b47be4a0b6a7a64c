"""``claims-server remittance post FILE [--dry-run] [--json]``: store an 835 and post it;
``remittance held [--json]`` and ``remittance decide ID --post|--reject``: the possible-duplicate queue.

The file is stored first (raw, encrypted, with its SHA-256; the same bytes twice are one
row), then posted in one transaction. Exit status: 0 posted (or a dry run), 3 duplicate
(nothing new was posted), 1 posting failed (the file is marked failed with the reason),
2 unreadable input. Output names counts, totals and checks, never patient data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from claims_server.errors import ApiError


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("remittance")
def remittance_group() -> None:
    """Post 835 remittances to the ledger; decide the held possible duplicates."""


@remittance_group.command("post")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="show what would be posted; change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
def post_command(file: Path, dry_run: bool, as_json: bool) -> None:
    """Store FILE (an 835) and post it exactly once."""
    from claims_server.remittance.services import receive_and_post
    from claims_server.security.principal import acting_as, system_principal

    try:
        content = file.read_bytes()
    except OSError as exc:
        click.echo(json.dumps({"detail": f"{file.name} is not readable ({type(exc).__name__})"}), err=True)
        sys.exit(2)
    try:
        with acting_as(system_principal("cli:remittance-post")):
            report = receive_and_post(_session_factory(), content, dry_run=dry_run)
    except ApiError as exc:
        click.echo(json.dumps({"status": exc.status, "detail": exc.detail, "errors": exc.errors}), err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_json_dict(), indent=2))
    else:
        summary = report.summary()
        click.echo(f"{report.edi_file_public_id}: {report.status}")
        for key, value in summary.items():
            if key not in ("status", "dry_run"):
                click.echo(f"  {key}: {value}")
        if report.error:
            click.echo(f"  error: {report.error['message']}")
    if report.status == "failed":
        sys.exit(1)
    if report.status == "duplicate":
        sys.exit(3)


@remittance_group.command("held")
@click.option("--json", "as_json", is_flag=True, help="print the queue as JSON")
def held_command(as_json: bool) -> None:
    """The possible-duplicate queue: held adjudications beside the current ones, and held remittances.

    Each held adjudication is named by the id of its possible-duplicate work item; decide it
    (or a held remittance, by its id) with ``claims-server remittance decide ID --post|--reject``.
    """
    from claims_server.remittance import held
    from claims_server.security.principal import acting_as, system_principal

    with acting_as(system_principal("cli:remittance-held")), _session_factory()() as session:
        items = [c.to_json() for c in held.all_held(session)]
        remittances = [held.held_remittance_json(session, r) for r in held.held_remittances(session)]
    if as_json:
        click.echo(json.dumps({"items": items, "held_remittances": remittances}, indent=2))
        return
    for r in remittances:
        click.echo(
            f"remittance {r['id']} held: {r['payer_name']} trace {r['trace_number']}, {r['payment']}, "
            f"{r['held_claims']} of {r['claims']} claims held"
        )
    for item in items:
        new, old = item["held"], item["current"]
        click.echo(f"{item['id'] or '(no work item)'} claim {item['claim']} ({item['payer_name']}):")
        for label, adj in (("held", new), ("current", old)):
            if adj is None:
                click.echo(f"  {label:8} none")
                continue
            click.echo(
                f"  {label:8} CLP02 {adj['status_code']} paid {adj['paid']} PR {adj['patient_responsibility']} "
                f"CLP07 {adj['payer_claim_control_number']} trace {adj['trace_number']} "
                f"remittance {adj['remittance']} received {adj['received_at'][:10] if adj['received_at'] else '?'}"
            )
    if not items and not remittances:
        click.echo("no held adjudications")


def _decider(username: str | None) -> str:
    """``decided_by`` for a CLI decision: the named supervisor (checked), else the command itself."""
    if username is None:
        return "cli:remittance-decide"
    from sqlalchemy import select

    from claims_server.models import Role, User

    with _session_factory()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active or user.role not in (Role.BILLING_SUPERVISOR, Role.ADMIN):
            click.echo(
                json.dumps({"detail": "--by must name an active billing supervisor or admin"}), err=True
            )
            sys.exit(2)
        return user.username


@remittance_group.command("decide")
@click.argument("item_or_remittance_id")
@click.option("--post", "decision", flag_value="post", help="post it: it replaces the current adjudication")
@click.option("--reject", "decision", flag_value="reject", help="reject it: its hold is undone")
@click.option("--by", "username", default=None, help="the supervisor deciding (recorded as decided_by)")
@click.option("--json", "as_json", is_flag=True, help="print the outcome as JSON")
def decide_command(
    item_or_remittance_id: str, decision: str | None, username: str | None, as_json: bool
) -> None:
    """Post or reject a held adjudication (its work item's id) or a held remittance (its id).

    Exit status: 0 decided, 1 refused (not held any more, already decided, or posting would
    leave a payer's A/R below zero; nothing changed), 2 bad input or unknown id.
    """
    from claims_server.db import unit_of_work
    from claims_server.remittance.held import decide_by_id
    from claims_server.security.principal import acting_as, system_principal

    if decision is None:
        click.echo(json.dumps({"detail": "say --post or --reject"}), err=True)
        sys.exit(2)
    actor = _decider(username)
    try:
        with (
            acting_as(system_principal("cli:remittance-decide")),
            unit_of_work(_session_factory()) as session,
        ):
            answer = decide_by_id(session, item_or_remittance_id, decision, actor=actor)
    except ApiError as exc:
        click.echo(json.dumps({"status": exc.status, "detail": exc.detail, "errors": exc.errors}), err=True)
        sys.exit(1 if exc.status == 409 else 2)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    if "remittance" in answer and isinstance(answer["remittance"], dict):
        what = f"remittance {answer['remittance']['id']}: {answer['remittance']['state']}"
    else:
        what = f"{answer['id']}: adjudication {(answer['adjudication'] or {}).get('state')}"
    click.echo(f"{what} ({decision}, decided by {actor})")
