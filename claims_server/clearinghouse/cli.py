"""``claims-server clearinghouse``: poll inboxes and send batches from the command line."""

from __future__ import annotations

import json
import sys

import click


@click.group(name="clearinghouse")
def clearinghouse_group() -> None:
    """Clearinghouse connection: poll inboxes, send built batches."""


def _factory_and_base() -> tuple[object, str]:
    from claims_server.config import load_settings
    from claims_server.db import make_engine, make_session_factory

    settings = load_settings()
    return make_session_factory(make_engine(settings.database_url)), settings.INSTANCE_PATH


@clearinghouse_group.command("poll")
@click.option(
    "--route", "route_id", type=int, default=None, help="one route id (default: every active route)"
)
def poll_command(route_id: int | None) -> None:
    """Fetch, store and process every file waiting in the routes' inboxes; print JSON."""
    from sqlalchemy import select

    from claims_server.clearinghouse import services
    from claims_server.clearinghouse.transport import TransportConfigError, TransportError
    from claims_server.models import ClearinghouseRoute
    from claims_server.security.principal import acting_as, system_principal

    factory, base = _factory_and_base()
    with factory() as session:  # type: ignore[operator]
        stmt = select(ClearinghouseRoute.id).where(ClearinghouseRoute.active)
        route_ids = [route_id] if route_id is not None else list(session.scalars(stmt))
    results, failed = [], False
    with acting_as(system_principal("cli:clearinghouse-poll")):
        for rid in route_ids:
            try:
                result = services.poll_inbox(
                    factory,
                    rid,
                    transport_factory=lambda r: services.route_transport(r, base),  # type: ignore[arg-type]
                )
                results.append(result.to_json_dict())
            except (TransportError, TransportConfigError) as exc:
                failed = True
                results.append({"route_id": rid, "error": str(exc)})
    click.echo(json.dumps({"routes": results}, indent=2))
    sys.exit(1 if failed else 0)


@clearinghouse_group.command("send")
@click.argument("batch_id", type=int)
def send_command(batch_id: int) -> None:
    """Upload one built (or failed) batch now; exit 1 when the upload fails."""
    from claims_server.clearinghouse import services
    from claims_server.clearinghouse.transport import TransportConfigError, TransportError
    from claims_server.security.principal import acting_as, system_principal

    factory, base = _factory_and_base()
    with acting_as(system_principal("cli:clearinghouse-send")):
        try:
            result = services.send_batch(
                factory,
                batch_id,
                transport_factory=lambda r: services.route_transport(r, base),  # type: ignore[arg-type]
            )
        except (TransportError, TransportConfigError) as exc:
            click.echo(json.dumps({"batch_id": batch_id, "error": str(exc)}), err=True)
            sys.exit(1)
    click.echo(json.dumps({"batch_id": batch_id, "state": result.state, "uploaded": result.uploaded}))


@clearinghouse_group.command("check")
@click.argument("route_id", type=int)
def check_command(route_id: int) -> None:
    """Check one route's transport settings and connection (lists its inbox); exit 1 on a problem."""
    from claims_server.clearinghouse import services
    from claims_server.clearinghouse.transport import TransportConfigError, TransportError
    from claims_server.models import ClearinghouseRoute

    factory, base = _factory_and_base()
    with factory() as session:  # type: ignore[operator]
        route = session.get(ClearinghouseRoute, route_id)
        if route is None:
            click.echo(json.dumps({"route_id": route_id, "error": "no such route"}), err=True)
            sys.exit(1)
        session.expunge(route)
    out: dict[str, object] = {"route_id": route_id, "transport": route.transport.value}
    try:
        transport = services.route_transport(route, base)
        try:
            out["inbox_files"] = len(transport.list_inbox())
        finally:
            transport.close()
    except (TransportError, TransportConfigError) as exc:
        click.echo(json.dumps({**out, "error": str(exc)}), err=True)
        sys.exit(1)
    click.echo(json.dumps(out))
