"""``claims-server credits list|unmatched|apply``: credit balances and unmatched payments from the command line.

Lists print amounts, codes and public ids only (no patient names: a terminal's scrollback is
not a place for PHI). ``apply`` posts an unmatched payment to a claim exactly as the API does.
"""

from __future__ import annotations

import json

import click


def _session_factory():  # type: ignore[no-untyped-def]
    from claims_server.cli import _checked_database_url
    from claims_server.db import make_engine, make_session_factory

    return make_session_factory(make_engine(_checked_database_url()))


@click.group("credits")
def credits_group() -> None:
    """Credit balances (patient and payer) and unmatched 835 payments."""


@credits_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_command(as_json: bool) -> None:
    """Every credit now: id, kind, amount, reserved."""
    from claims_server.ledger import credits

    with _session_factory()() as session:
        rows = [credits.credit_json(session, c) for c in credits.list_credits(session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['id']}  {r['kind']}  {r['amount']}  reserved {r['reserved']}")


@credits_group.command("unmatched")
@click.option("--json", "as_json", is_flag=True)
def unmatched_command(as_json: bool) -> None:
    """Open unmatched payments: item id, trace, CLP01, billed, paid."""
    from claims_server.remittance import unmatched

    with _session_factory()() as session:
        rows = []
        for item, payment in unmatched.list_unmatched(session):
            row = unmatched.detail_json(session, item, payment, named={}, with_suggestions=False)
            row.pop("patient_name", None)
            rows.append(row)
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        click.echo(
            f"{r['id']}  trace {r['trace_number']}  {r['patient_control_number']}  billed {r['billed']}  paid {r['paid']}"
        )


@credits_group.command("apply")
@click.argument("item_id")
@click.argument("claim")
@click.option("--by", "by", required=True, help="the username who applies it (recorded and audited)")
def apply_command(item_id: str, claim: str, by: str) -> None:
    """Apply the unmatched payment ITEM_ID to CLAIM (public id or claim number); exit 1 when refused."""
    from claims_server.db import unit_of_work
    from claims_server.errors import ApiError
    from claims_server.remittance import unmatched
    from claims_server.security.principal import acting_as, system_principal

    try:
        with acting_as(system_principal(f"cli:{by}"[:100])), unit_of_work(_session_factory()) as session:
            item, payment = unmatched.get_unmatched(session, item_id)
            target = unmatched.find_claim(session, claim)
            outcome = unmatched.apply_to_claim(session, item, payment, target, actor=by)
    except ApiError as exc:
        click.echo(f"refused: {exc.detail}", err=True)
        raise SystemExit(1) from None
    click.echo(f"applied: claim state {outcome['claim_state']}")
