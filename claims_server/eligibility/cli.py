"""``claims-server eligibility``: batch-check tomorrow's patients, poll 271s, run the simulated payer."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import click


@click.group(name="eligibility")
def eligibility_group() -> None:
    """270/271 eligibility: nightly batch, polling answers, the simulated CORE endpoint."""


def _factory_and_base() -> tuple[Any, str]:
    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory

    settings = load_settings()
    return make_session_factory(make_engine(settings.database_url)), settings.INSTANCE_PATH


@eligibility_group.command("check-tomorrow")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="default: today")
def check_tomorrow_command(today: Any) -> None:
    """Queue and upload a batch 270 for every patient with an encounter tomorrow; print JSON."""
    from claims_server.clearinghouse.services import route_transport
    from claims_server.db import unit_of_work
    from claims_server.eligibility import services
    from claims_server.security.principal import acting_as, system_principal

    factory, base = _factory_and_base()
    day = today.date() if today is not None else date.today()
    with acting_as(system_principal("cli:eligibility-tomorrow")):
        with unit_of_work(factory) as session:
            check_ids = services.queue_tomorrow(session, day)
        files = services.upload_batch(
            factory, check_ids, transport_factory=lambda route: route_transport(route, base)
        )
    click.echo(json.dumps({"checks": len(check_ids), "files": files}))


@eligibility_group.command("poll")
@click.argument("route_id", type=int)
def poll_command(route_id: int) -> None:
    """Record the 271s waiting in one route's inbox; exit 1 when the inbox cannot be reached."""
    from claims_server.clearinghouse.services import route_transport
    from claims_server.clearinghouse.transport import TransportConfigError, TransportError
    from claims_server.eligibility import services
    from claims_server.security.principal import acting_as, system_principal

    factory, base = _factory_and_base()
    with acting_as(system_principal("cli:eligibility-poll")):
        try:
            outcome = services.poll_answers(
                factory, route_id, transport_factory=lambda route: route_transport(route, base)
            )
        except (TransportError, TransportConfigError) as exc:
            click.echo(json.dumps({"route_id": route_id, "error": str(exc)}), err=True)
            sys.exit(1)
    click.echo(json.dumps({"route_id": route_id, **outcome}))


@eligibility_group.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8271, show_default=True)
def simulator_command(host: str, port: int) -> None:
    """Serve the simulated payer's CAQH CORE real-time endpoint (development and demos only)."""
    from werkzeug.serving import run_simple

    from claims_server.simulator.eligibility import core_endpoint

    click.echo(f"CORE eligibility endpoint on http://{host}:{port}/ (POST a 270 envelope)")
    run_simple(host, port, core_endpoint(), threaded=True)
