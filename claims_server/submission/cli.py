"""``claims-server batches send|list|show``: send ready claims and read batches from the shell.

``send`` batches the ready claims (all, or ``--claim`` ones; every route, or ``--route``)
and sends each batch as the API does (in-process without a broker, else queued); it
prints each batch (id, route, claims, total) and exits 0, also when nothing is ready
("nothing ready to send"). It exits 1 when an upload failed or the broker refused a
batch (the batch is kept, ``failed`` or ``built``, and sent again later) and 2 for bad input (an unknown claim or route),
with the problem as JSON on stderr. ``--dry-run`` shows what would go out and changes
nothing. Ids, counts and amounts only: no patient data is printed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from claims_server.cli_support import config_errors_are_one_line, problems_are_json


def _factory() -> Any:
    """The session factory, with Celery configured so sending knows in-process from queued."""
    from claims_server.app import check_database
    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory
    from claims_server.tasks.celery_app import configure_celery

    settings = load_settings()
    configure_celery(settings)
    engine = make_engine(settings.database_url)
    check_database(engine)
    return make_session_factory(engine)


def _route_id(session: Any, text: str) -> int:
    """A route by its id (digits) or public id; 422 naming ``--route`` when there is none."""
    from sqlalchemy import select

    from claims_server.models import ClearinghouseRoute
    from claims_server.submission.sending import route_id_of

    if text.isdigit():
        route_id = session.scalar(select(ClearinghouseRoute.id).where(ClearinghouseRoute.id == int(text)))
        if route_id is not None:
            return int(route_id)
    return route_id_of(session, text, field_name="--route")


def _money(text: str) -> str:
    whole, _, cents = text.partition(".")
    sign, digits = ("-", whole[1:]) if whole.startswith("-") else ("", whole)
    return f"{sign}${int(digits):,}.{cents}"


def _report_lines(report: dict[str, Any]) -> list[str]:
    lines = ["dry run: nothing was changed"] if report["dry_run"] else []
    if report["nothing_ready"]:
        lines.append("nothing ready to send")
    for batch in report["batches"]:
        lines.append(
            f"batch {batch['id'] or '(dry run)'}  route {batch['route_name']}  {batch['claims']} claims  "
            f"{_money(batch['total_charge'])}  {batch['state']}"
            + (f"  ({batch['last_error']})" if batch["last_error"] else "")
        )
        for payer in batch["per_payer"]:
            lines.append(f"  {payer['payer_name']}: {payer['claims']} claims, {_money(payer['total'])}")
    if report["batches"]:
        lines.append(f"total: {report['claims_batched']} claims, {_money(report['total_charge'])}")
    for held in report["held"]:
        rules = sorted({f["rule_id"] for f in held["findings"] if f["severity"] == "error"})
        lines.append(f"held: claim {held['claim']} ({held['patient_control_number']}): {', '.join(rules)}")
    for item in report["not_ready"]:
        lines.append(f"not ready: claim {item['claim']} is {item['state']}")
    for item in report["not_batched"]:
        lines.append(f"not sent: claim {item['claim']} ({item['reason']}: {item['message']})")
    if report["unrouted_claims"]:
        lines.append(f"left ready: {report['unrouted_claims']} claims whose payer has no active route")
    return lines


@click.group("batches")
def batches_group() -> None:
    """Send ready claims to the clearinghouse; list and show batches."""


@batches_group.command("send")
@click.option("--route", "route", default=None, help="one route (id or public id); default: every route")
@click.option(
    "--claim", "claims", multiple=True, help="a claim's public id (repeat); default: every ready claim"
)
@click.option("--dry-run", is_flag=True, help="show what would be batched; change nothing")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@config_errors_are_one_line
@problems_are_json
def send_command(route: str | None, claims: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Batch the ready claims and send each batch; print each batch (id, route, claims, total)."""
    from claims_server.security.principal import acting_as, system_principal
    from claims_server.submission.sending import send_ready_claims

    factory = _factory()
    with factory() as session:
        route_id = _route_id(session, route) if route else None
    with acting_as(system_principal("cli:batches-send")):
        report = send_ready_claims(
            factory, claim_ids=list(claims) if claims else None, route_id=route_id, dry_run=dry_run
        ).to_json_dict()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for line in _report_lines(report):
            click.echo(line)
    # A failed upload, or a batch the broker refused (still built): kept and sent again later.
    sys.exit(1 if any(b["state"] == "failed" or b["last_error"] for b in report["batches"]) else 0)


@batches_group.command("list")
@click.option("--state", default=None, help="only batches in this state (built, sent, accepted, ...)")
@click.option("--route", "route", default=None, help="only this route (id or public id)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@config_errors_are_one_line
@problems_are_json
def list_command(state: str | None, route: str | None, limit: int, as_json: bool) -> None:
    """The newest batches: id, state, route, claims, total, when built."""
    from sqlalchemy import select

    from claims_server.models import ClearinghouseRoute
    from claims_server.models.submissions import BatchState
    from claims_server.submission.sending import batches_to_json, recent_batches

    try:
        wanted = BatchState(state) if state else None
    except ValueError:
        choices = ", ".join(s.value for s in BatchState)
        raise click.BadParameter(f"one of {choices}", param_hint="--state") from None
    with _factory()() as session:
        route_public = None
        if route:
            route_public = session.scalar(
                select(ClearinghouseRoute.public_id).where(ClearinghouseRoute.id == _route_id(session, route))
            )
        items = batches_to_json(
            session, recent_batches(session, state=wanted, route=route_public, limit=limit)
        )
    if as_json:
        click.echo(json.dumps({"items": items}, indent=2))
        return
    if not items:
        click.echo("no batches")
    for b in items:
        click.echo(
            f"{b['id']}  {b['state']}  route {b['route_name']}  {b['claims']} claims  "
            f"{_money(b['total_charge'])}  built {b['built_at'] or '-'}"
        )


@batches_group.command("show")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@config_errors_are_one_line
@problems_are_json
def show_command(batch_id: str, as_json: bool) -> None:
    """One batch (public id, or id): totals per payer, state, attempts and its 837/999/277CA files."""
    from claims_server.models import SubmissionBatch
    from claims_server.submission.sending import batch_to_json, get_batch

    with _factory()() as session:
        batch = session.get(SubmissionBatch, int(batch_id)) if batch_id.isdigit() else None
        doc = batch_to_json(session, batch or get_batch(session, batch_id))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"batch {doc['id']}  {doc['kind']}  {doc['state']}  route {doc['route_name']}\n"
        f"claims: {doc['claims']}, total {_money(doc['total_charge'])}; attempts {doc['attempts']}; "
        f"built {doc['built_at'] or '-'}; sent {doc['sent_at'] or '-'}"
    )
    if doc["last_error"]:
        click.echo(f"last error: {doc['last_error']}")
    for payer in doc["per_payer"]:
        click.echo(f"  {payer['payer_name']}: {payer['claims']} claims, {_money(payer['total'])}")
    if doc["ta1"]:
        click.echo(f"TA1: {doc['ta1']['status']} ({doc['ta1']['meaning']})")
    for f in doc["files"]:
        click.echo(
            f"file {f['id']}  {f['kind']} {f['direction']}  {f['status']}  {f['received_at']}"
            + (f"  {f['answer']}" if f["answer"] else "")
        )
