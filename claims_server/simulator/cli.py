"""``claims-server simulator run``: the simulated clearinghouse and payer (docs/simulator.md)."""

from __future__ import annotations

import json

import click


@click.group(name="simulator")
def simulator_group() -> None:
    """A clearinghouse-and-payer simulator answering our 837s with 999, 277CA and 835."""


@simulator_group.command("run")
@click.option("--once", "mode", flag_value="once", default=True, help="one pass, then exit (default)")
@click.option("--watch", "mode", flag_value="watch", help="keep answering every --interval seconds")
@click.option("--outbox", required=True, type=click.Path(file_okay=False), help="where our 837s are uploaded")
@click.option("--inbox", required=True, type=click.Path(file_okay=False), help="where the answers go")
@click.option(
    "--interval", default=2.0, show_default=True, type=float, help="seconds between passes (--watch)"
)
def run_command(mode: str, outbox: str, inbox: str, interval: float) -> None:
    """Answer every 837 in OUTBOX: 999 + 277CA now, the 835 on the next pass."""
    from claims_server.simulator.service import run_once, watch

    if mode == "watch":
        try:
            watch(outbox, inbox, interval=interval)
        except KeyboardInterrupt:
            return
        return
    click.echo(json.dumps(run_once(outbox, inbox).to_json_dict(), indent=2))
