"""``claims-server approvals list|decide``: over-limit write-offs and refunds from the command line.

``list`` prints ids, kinds, amounts, claims and ages, never the notes (they can name the
patient; the workspace's Approvals page and ``GET /api/v1/approvals`` show them).
``decide`` approves or declines as a named supervisor or admin, through the same
``ledger.approvals.decide`` as the API (the same rules: not one's own request, a note to
decline, exactly one decision).
"""

from __future__ import annotations

import json
import sys

import click

from claims_server.errors import ApiError


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("approvals")
def approvals_group() -> None:
    """Write-offs and refunds above the requester's limit, waiting for a supervisor."""


@approvals_group.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "approved", "declined", "withdrawn", "all"]),
    default="pending",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
def list_command(state: str, as_json: bool) -> None:
    """Requests (pending by default, the longest waiting first)."""
    from claims_server.api_common.fields import cents_to_money
    from claims_server.ledger import approvals

    with _session_factory()() as session:
        rows = []
        for approval in approvals.list_approvals(session, state=None if state == "all" else state):
            view = approvals.view_of(session, approval)
            rows.append(
                {
                    "id": approval.public_id,
                    "kind": approval.kind.value,
                    "state": approval.state.value,
                    "amount": cents_to_money(approval.amount_cents),
                    "claim_id": view.claim_public_id,
                    "requested_by": view.requested_by_name,
                    "age_days": view.age_days(),
                }
            )
    if as_json:
        click.echo(json.dumps({"items": rows}, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['kind']:<9} {r['state']:<9} {r['amount']:>10}  claim {r['claim_id'] or '-'}  "
            f"by {r['requested_by'] or 'system'}, {r['age_days']} d"
        )


@approvals_group.command("decide")
@click.argument("approval_id")
@click.option("--approve", "decision", flag_value="approve", help="post it as the deciding user")
@click.option("--decline", "decision", flag_value="decline", help="post nothing (--note required)")
@click.option("--by", "username", required=True, help="the billing supervisor or admin deciding")
@click.option("--note", default=None, help="why (required to decline)")
def decide_command(approval_id: str, decision: str | None, username: str, note: str | None) -> None:
    """Approve or decline one request.

    Exit status: 0 decided, 1 refused (already decided, the balance changed; nothing
    changed), 2 bad input, an unknown id or user, or a user who may not decide.
    """
    from sqlalchemy import select

    from claims_server.db import unit_of_work
    from claims_server.ledger import approvals
    from claims_server.models import User
    from claims_server.security.principal import acting_as, system_principal

    if decision is None:
        click.echo(json.dumps({"detail": "say --approve or --decline"}), err=True)
        sys.exit(2)
    try:
        with acting_as(system_principal("cli:approvals-decide")), unit_of_work(_session_factory()) as session:
            user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
            if user is None:
                raise click.BadParameter(f"no active user is called {username!r}", param_hint="--by")
            approval = approvals.get_approval(session, approval_id)
            approvals.decide(session, approval, approve=decision == "approve", by=user, note=note)
            state, amount = approval.state.value, approval.amount_cents
    except ApiError as exc:
        click.echo(json.dumps({"status": exc.status, "detail": exc.detail, "errors": exc.errors}), err=True)
        sys.exit(1 if exc.status == 409 else 2)
    from claims_server.api_common.fields import cents_to_money

    click.echo(f"{approval_id}: {state} ({cents_to_money(amount)}, decided by {username})")
