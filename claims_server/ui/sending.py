"""Ready to send (``/ui/send``) and batches (``/ui/batches``): send ready claims, then follow each batch.

The Ready to send screen counts and totals the ready claims by payer and by route and lists
them with a checkbox each; "Send selected" or "Send all ready" runs the same service as
``POST /api/v1/batches`` (``submission.sending.send_ready_claims``: batch, then upload in
process or queue), and "Check first" its dry run, shown on the page. After a send the
browser goes to the batch (or to the list when several were built): its state, claims,
totals per payer and its 837 / 999 / 277CA files.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from claims_server.api_common.fields import PUBLIC_ID_PATTERN, money_text_to_cents
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session, state
from claims_server.errors import ApiError
from claims_server.models import BatchClaim, Claim, Coverage
from claims_server.models.submissions import BatchState
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.submission import sending
from claims_server.ui.blueprint import bp, money, page

#: Ready claims listed on the screen (the counts and "Send all ready" cover every one).
SHOWN_CLAIMS = 500
#: Claims listed on a batch's screen (its totals cover every one).
SHOWN_BATCH_CLAIMS = 1000


def _may_send() -> bool:
    rule = rule_for("ui.send_post")
    return rule is not None and current_principal().role in rule.roles


def _route_filter(errors: dict[str, str], value: str | None) -> str | None:
    route = (value or "").strip()
    if not route:
        return None
    if not PUBLIC_ID_PATTERN.match(route):
        errors["route"] = "Choose a route from the list."
        return None
    return route


def _send_page(
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    route: str | None = None,
    selected: set[str] | None = None,
    report: sending.SendReport | None = None,
) -> Response:
    session = db_session()
    overview = sending.ready_overview(session)
    claims = sending.ready_claims(session, route=route, limit=SHOWN_CLAIMS)
    return page(
        "send.html",
        status,
        overview=overview,
        claims=claims,
        dates=sending.first_service_dates(session, [c.id for c in claims]),
        route=route,
        route_options=[(g.id, g.name) for g in overview.by_route if g.id],
        selected=selected or set(),
        errors=errors or {},
        may_send=_may_send(),
        report=report,
        not_batched_reasons=sending.NOT_BATCHED_REASONS,
        shown_limit=SHOWN_CLAIMS,
    )


@bp.route("/send", methods=["GET"], endpoint="send")
def send_screen() -> Response:
    """Ready claims by payer and route, and the list to choose from (a PHI view: names are shown)."""
    errors: dict[str, str] = {}
    route = _route_filter(errors, request.args.get("route"))
    return _send_page(422 if errors else 200, errors=errors, route=route)


def _report_flashes(report: sending.SendReport) -> None:
    if report.held:
        numbers = ", ".join(h.patient_control_number for h in report.held[:20])
        more = f" and {len(report.held) - 20} more" if len(report.held) > 20 else ""
        flash(
            f"{len(report.held)} claim(s) were held back for correction (back to draft, with their "
            f"findings on the claim): {numbers}{more}.",
            "error",
        )
    if report.not_ready:
        flash(
            f"{len(report.not_ready)} of the chosen claims were no longer ready; they were not sent.", "error"
        )
    if report.not_batched:
        reasons = sorted({sending.NOT_BATCHED_REASONS[reason] for _, reason in report.not_batched})
        flash(
            f"{len(report.not_batched)} of the chosen claims were not sent and are still ready: "
            f"{'; '.join(reasons)}.",
            "error",
        )
    # Failed uploads, and batches the broker refused (still built, with why): kept and resent.
    unsent = [b for b in report.batches if b.state == "failed" or b.last_error]
    if unsent:
        flash(
            f"{len(unsent)} batch(es) could not be sent now; they are kept and will be sent again "
            f"({unsent[0].last_error}).",
            "error",
        )


@bp.route("/send", methods=["POST"], endpoint="send_post")
@mutation(own_transactions=True)
def send_post() -> Response:
    """Send the selected (or all) ready claims; "Check first" shows the dry run on the screen."""
    intent = request.form.get("intent", "")
    errors: dict[str, str] = {}
    route = _route_filter(errors, request.form.get("route"))
    chosen = [c.strip() for c in request.form.getlist("claims") if c.strip()]
    if any(not PUBLIC_ID_PATTERN.match(c) for c in chosen):
        errors["claims"] = "The selection holds an unknown claim; reload the page and choose again."
    if intent not in ("selected", "all", "preview"):
        errors["_form"] = "Choose Send selected, Send all ready or Check first."
    elif intent == "selected" and not chosen:
        errors["claims"] = "Select at least one claim, or use Send all ready."
    if errors:
        return _send_page(422, errors=errors, route=route, selected=set(chosen))
    claim_ids = chosen if intent == "selected" or (intent == "preview" and chosen) else None
    try:
        route_id = sending.route_id_of(db_session(), route) if route else None
        report = sending.send_ready_claims(
            state().session_factory, claim_ids=claim_ids, route_id=route_id, dry_run=intent == "preview"
        )
    except ApiError as exc:
        messages = [str(e.get("message")) for e in exc.errors if e.get("message")]
        errors["_form"] = exc.detail + (f" ({messages[0]})" if messages else "")
        return _send_page(422, errors=errors, route=route, selected=set(chosen))
    if report.dry_run:
        return _send_page(route=route, selected=set(chosen), report=report)
    _report_flashes(report)
    if report.nothing_ready or not report.batches:
        flash("Nothing was sent: no chosen claim was ready to go out.", "error")
        return redirect(url_for("ui.send", route=route) if route else url_for("ui.send"), 303)
    flash(
        f"Sent {report.claims_batched} claim(s), {money(report.total_cents)}, "
        f"in {len(report.batches)} batch(es).",
        "success",
    )
    if len(report.batches) == 1 and report.batches[0].id:
        return redirect(url_for("ui.batch", batch_id=report.batches[0].id), 303)
    return redirect(url_for("ui.batches"), 303)


def _with_cents(doc: dict[str, Any]) -> dict[str, Any]:
    """A batch's JSON with its totals also as cents, for the ``money`` filter."""
    doc["total_cents"] = money_text_to_cents(doc["total_charge"], allow_zero=True)[0] or 0
    for payer in doc["per_payer"]:
        payer["total_cents"] = money_text_to_cents(payer["total"], allow_zero=True)[0] or 0
    return doc


@bp.route("/batches", methods=["GET"], endpoint="batches")
def batches_screen() -> Response:
    """Batches newest first, filtered by state: route, claims, total, state, attempts."""
    session = db_session()
    errors: dict[str, str] = {}
    raw_state = (request.args.get("state") or "").strip()
    wanted = None
    if raw_state:
        try:
            wanted = BatchState(raw_state)
        except ValueError:
            errors["state"] = "Choose one of the listed states."
    try:
        batches = sending.list_batches(
            session, state=wanted, limit=50, cursor=request.args.get("cursor") or None
        )
    except ApiError as exc:  # a cursor from other filters, or forged
        errors["_form"] = exc.detail
        batches = sending.list_batches(session, state=wanted, limit=50)
    older = None
    if batches.next_cursor:
        older = url_for(
            "ui.batches", cursor=batches.next_cursor, **({"state": wanted.value} if wanted else {})
        )
    return page(
        "batches.html",
        422 if errors else 200,
        rows=[_with_cents(doc) for doc in sending.batches_to_json(session, batches.items)],
        errors=errors,
        chosen_state=wanted.value if wanted else "",
        states=[("", "Any state")] + [(s.value, s.value.replace("_", " ")) for s in BatchState],
        older_url=older,
    )


@bp.route("/batches/<batch_id>", methods=["GET"], endpoint="batch")
def batch_screen(batch_id: str) -> Response:
    """One batch: state, totals per payer, its files (837, 999, 277CA) and its claims (a PHI view)."""
    session = db_session()
    batch = sending.get_batch(session, batch_id)
    doc = sending.batch_to_json(
        session, batch, file_link=lambda file_id: url_for("ui.file_download", file_id=file_id)
    )
    rows: list[Any] = list(
        session.scalars(
            select(Claim)
            .join(BatchClaim, BatchClaim.claim_id == Claim.id)
            .where(BatchClaim.batch_id == batch.id)
            .order_by(BatchClaim.position)
            .limit(SHOWN_BATCH_CLAIMS)
            .options(selectinload(Claim.patient), selectinload(Claim.coverage).selectinload(Coverage.payer))
        )
    )
    return page("batch.html", batch=_with_cents(doc), claims=rows, shown_limit=SHOWN_BATCH_CLAIMS)
