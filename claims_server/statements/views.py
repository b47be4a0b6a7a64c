"""``/api/v1/statements``: statements, their PDF and HTML, email, print batches and runs (staff),
and the patient's own statement through the statement link.

Thin views over ``claims_server.statements.services`` (runs, stored documents) and
``claims_server.statements.delivery``. Every read of a statement is audited; documents
are served ``no-store`` and never cached.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from claims_server.api_common.fields import PublicId, StrictBoolean, StrictInteger, cents_to_money
from claims_server.api_common.openapi import money_out, public_id_out
from claims_server.api_common.pagination import PageArgsSchema, PageSchema, paginate
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session, state
from claims_server.errors import NotFound, Unprocessable
from claims_server.models import AuditAction, Patient, Statement, StatementState
from claims_server.models.statements import DeliveryChannel, HoldReason, StatementRunState
from claims_server.security import clock
from claims_server.security.audit import audit_event
from claims_server.security.ownership import get_owned, scope_query
from claims_server.security.principal import current_principal
from claims_server.statements import delivery

blp = Blueprint(
    "statements",
    __name__,
    url_prefix="/api/v1/statements",
    description="Patient statements and their delivery",
)
patient_statement_blp = Blueprint(
    "patient_statement",
    __name__,
    url_prefix="/api/v1/patient-link",
    description="The patient's own statement documents (statement link session)",
)

_BATCH_ID = re.compile(r"^\d{8}-[0-9a-f]{8}$")


class StatementListArgs(PageArgsSchema):
    patient_id = PublicId(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf([s.value for s in StatementState]))


class PrintBatchSchema(Schema):
    statement_ids = fields.List(PublicId(), load_default=None, validate=validate.Length(1, 10000))
    duplex = StrictBoolean(load_default=True)


class RunSchema(Schema):
    as_of = fields.Date(load_default=None)


# -- response bodies (documented; the views build them with statement_json and the services)


class StatementLineOutSchema(Schema):
    line_number = StrictInteger(required=True)
    service_date = fields.Date(allow_none=True, required=True)
    description = fields.String(allow_none=True, required=True)
    charge = money_out(required=True)
    insurance_paid = money_out(required=True)
    adjustments = money_out(required=True)
    patient_paid = money_out(required=True)
    balance = money_out(required=True)
    reason = fields.String(allow_none=True, required=True)


class AgingSchema(Schema):
    class Meta:
        include = {
            "current": money_out(required=True),
            "31-60": money_out(required=True),
            "61-90": money_out(required=True),
            "over 90": money_out(required=True),
        }


class StatementOutSchema(Schema):
    id = public_id_out(required=True)
    patient_id = public_id_out(required=True)
    statement_date = fields.Date(required=True)
    due_date = fields.Date(required=True)
    amount_due = money_out(required=True)
    pending_insurance = money_out(required=True)
    aging = fields.Nested(AgingSchema, required=True)
    dunning_stage = StrictInteger(required=True)
    dunning_step = StrictInteger(allow_none=True, required=True)
    state = fields.String(required=True, validate=validate.OneOf([s.value for s in StatementState]))
    delivery_channel = fields.String(
        required=True, validate=validate.OneOf([c.value for c in DeliveryChannel])
    )
    delivered_at = fields.DateTime(allow_none=True, required=True)


class StatementDetailSchema(StatementOutSchema):
    lines = fields.List(fields.Nested(StatementLineOutSchema), required=True)


class StatementPageSchema(PageSchema):
    items = fields.List(fields.Nested(StatementOutSchema), required=True)


class EmailSentSchema(Schema):
    id = public_id_out(required=True)
    state = fields.String(required=True)
    delivery_channel = fields.String(required=True)
    link_expires_at = fields.DateTime(required=True)


class PrintBatchOutSchema(Schema):
    id = fields.String(required=True, metadata={"pattern": _BATCH_ID.pattern})
    pdf = fields.String(required=True)
    manifest = fields.String(required=True)
    statements = StrictInteger(required=True)
    pages = StrictInteger(required=True)
    sheets = StrictInteger(required=True)
    pdf_sha256 = fields.String(required=True, metadata={"pattern": "^[0-9a-f]{64}$"})
    statement_ids = fields.List(public_id_out(), required=True)


class RunOutSchema(Schema):
    id = public_id_out(required=True)
    as_of = fields.Date(required=True)
    state = fields.String(required=True, validate=validate.OneOf([s.value for s in StatementRunState]))
    done = StrictInteger(required=True)
    total = StrictInteger(required=True)
    issued = StrictInteger(required=True)
    skipped = StrictInteger(required=True)
    held = StrictInteger(required=True)
    failed = StrictInteger(required=True)
    skip_reasons = fields.Dict(keys=fields.String(), values=StrictInteger(), required=True)
    errors = fields.List(fields.Raw(), required=True)
    warnings = fields.List(
        fields.Raw(),
        required=True,
        metadata={
            "description": "lines kept off the statements (rule, line reference), e.g. pr45_not_billable"
        },
    )
    notices = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "what a person should read, e.g. 'n patients already have a statement this cycle'"
        },
    )
    started_at = fields.DateTime(allow_none=True, required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)


class HoldOutSchema(Schema):
    id = public_id_out(required=True)
    patient_id = public_id_out(allow_none=True, required=True)
    reason = fields.String(required=True, validate=validate.OneOf([r.value for r in HoldReason]))
    balance = money_out(allow_none=True, required=True)
    dunning_step = StrictInteger(allow_none=True, required=True)
    placed_at = fields.DateTime(required=True)
    released_at = fields.DateTime(allow_none=True, required=True)


class HoldListSchema(Schema):
    items = fields.List(fields.Nested(HoldOutSchema), required=True)


def _documents(status: int, schema: type[Schema], description: str | None = None) -> Any:
    """Document a success body the view builds itself (no re-serialisation)."""
    return blp.alt_response(status, schema=schema, description=description, success=True)


def _file(mimetype: str, description: str) -> dict[str, Any]:
    """A document answer (PDF, HTML, CSV) for ``@blp.doc(responses=...)``."""
    return {"description": description, "content": {mimetype: {"schema": {"type": "string"}}}}


def statement_json(row: Statement, *, with_lines: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.public_id,
        "patient_id": row.patient.public_id,
        "statement_date": row.statement_date.isoformat(),
        "due_date": row.due_date.isoformat(),
        "amount_due": cents_to_money(row.balance_cents),
        "pending_insurance": cents_to_money(row.pending_insurance_cents or 0),
        "aging": {
            "current": cents_to_money(row.current_cents),
            "31-60": cents_to_money(row.days_31_60_cents),
            "61-90": cents_to_money(row.days_61_90_cents),
            "over 90": cents_to_money(row.days_91_120_cents + row.over_120_cents),
        },
        "dunning_stage": row.dunning_stage,
        "dunning_step": row.dunning_step,
        "state": row.state.value,
        "delivery_channel": row.delivery_channel.value,
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }
    if with_lines:
        data["lines"] = [
            {
                "line_number": line.line_number,
                "service_date": line.service_date.isoformat() if line.service_date else None,
                "description": line.description,
                "charge": cents_to_money(line.charge_cents),
                "insurance_paid": cents_to_money(line.insurance_paid_cents),
                "adjustments": cents_to_money(line.adjustments_cents),
                "patient_paid": cents_to_money(line.patient_paid_cents),
                "balance": cents_to_money(line.balance_cents),
                "reason": line.reason_text,
            }
            for line in row.lines
        ]
    return data


def _audit_read(row: Statement, event_type: str) -> None:
    audit_event(
        db_session(),
        action=AuditAction.READ,
        event_type=event_type,
        entity_type="statement",
        entity_id=row.public_id,
        patient_id=row.patient_id,
    )


def _document(body: bytes | str, mimetype: str, name: str | None = None) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    if name:
        response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    if mimetype == "text/html":
        # The statement page is self-contained: no scripts, no remote content.
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def statement_pdf_response(row: Statement) -> Response:
    from claims_server.statements.services import statement_pdf

    pdf = statement_pdf(row)
    _audit_read(row, "statement.pdf.read")
    return _document(pdf, "application/pdf", f"statement-{row.public_id[:10]}.pdf")


def statement_html_response(row: Statement) -> Response:
    from claims_server.statements.services import statement_html

    html = statement_html(row)
    _audit_read(row, "statement.html.read")
    return _document(html, "text/html")


def _owned(statement_id: str) -> Statement:
    return get_owned(db_session(), Statement, statement_id, current_principal())


# -- staff --------------------------------------------------------------------------------------


@blp.route("", methods=["GET"], endpoint="list_statements")
@_documents(200, StatementPageSchema)
@mutation()
@blp.arguments(StatementListArgs, location="query")
def list_statements(args: dict[str, Any]) -> dict[str, Any]:
    """Statements, oldest first (filters: patient_id, state); the list read is audited."""
    session = db_session()
    query = scope_query(select(Statement), current_principal(), Statement)
    filters = {"patient_id": args["patient_id"], "state": args["state"]}
    if args["patient_id"]:
        patient = get_owned(session, Patient, args["patient_id"], current_principal())
        query = query.where(Statement.patient_id == patient.id)
    if args["state"]:
        query = query.where(Statement.state == StatementState(args["state"]))
    page = paginate(session, query, Statement.id, limit=args["limit"], cursor=args["cursor"], filters=filters)
    audit_event(
        session,
        action=AuditAction.READ,
        event_type="statement.list",
        entity_type="statement",
        details={"count": len(page.items)},
    )
    return {"items": [statement_json(s) for s in page.items], "next_cursor": page.next_cursor}


@blp.route("/<statement_id>", methods=["GET"], endpoint="get_statement")
@_documents(200, StatementDetailSchema)
@mutation()
def get_statement(statement_id: str) -> dict[str, Any]:
    """One statement with its lines (audited)."""
    row = _owned(statement_id)
    _audit_read(row, "statement.read")
    return statement_json(row, with_lines=True)


@blp.route("/<statement_id>/pdf", methods=["GET"], endpoint="statement_pdf")
@blp.doc(responses={"200": _file("application/pdf", "the statement PDF")})
@mutation()
def get_statement_pdf(statement_id: str) -> Response:
    """The statement as mailed (PDF, audited)."""
    return statement_pdf_response(_owned(statement_id))


@blp.route("/<statement_id>/html", methods=["GET"], endpoint="statement_html")
@blp.doc(responses={"200": _file("text/html", "the statement page")})
@mutation()
def get_statement_html(statement_id: str) -> Response:
    """The statement as emailed, without a pay link (HTML, audited)."""
    return statement_html_response(_owned(statement_id))


@blp.route("/<statement_id>/email", methods=["POST"], endpoint="email_statement")
@_documents(200, EmailSentSchema)
@mutation()
def email_statement(statement_id: str) -> dict[str, Any]:
    """Email the statement with a fresh one-time link; 502 when the mail server fails."""
    row = _owned(statement_id)
    sent = delivery.email_issued_statement(db_session(), row, settings=state().settings, now=clock.now())
    return {
        "id": row.public_id,
        "state": row.state.value,
        "delivery_channel": row.delivery_channel.value,
        "link_expires_at": sent.link_expires_at.isoformat(),
    }


@blp.route("/print-batches", methods=["POST"], endpoint="create_print_batch")
@_documents(201, PrintBatchOutSchema)
@mutation()
@blp.arguments(PrintBatchSchema)
def create_print_batch(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Merge issued statements (all mail ones, or those named) into one PDF with a manifest."""
    batch = delivery.print_statements(
        db_session(),
        settings=state().settings,
        now=clock.now(),
        statement_ids=data["statement_ids"],
        duplex=data["duplex"],
    )
    if batch is None:
        raise Unprocessable(
            "no issued statements are waiting to be mailed",
            errors=[{"field": "statement_ids", "rule": "something_to_print", "message": "nothing to print"}],
        )
    return batch.to_json_dict(), 201


@blp.route("/print-batches/<batch_id>/<kind>", methods=["GET"], endpoint="print_batch_file")
@blp.doc(
    parameters=[
        {
            "in": "path",
            "name": "kind",
            "required": True,
            "schema": {"type": "string", "enum": ["pdf", "manifest"]},
        }
    ],
    responses={
        "200": {
            "description": "the merged PDF or the CSV manifest",
            "content": {
                "application/pdf": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
@mutation()
def print_batch_file(batch_id: str, kind: str) -> Response:
    """Download a batch's merged PDF (``pdf``) or manifest (``manifest``) for the mail house."""
    if not _BATCH_ID.match(batch_id) or kind not in ("pdf", "manifest"):
        raise NotFound("no print batch file with that name")
    content, name = delivery.print_batch_file(db_session(), batch_id, kind)
    audit_event(
        db_session(),
        action=AuditAction.READ,
        event_type="statement.print_batch.download",
        entity_type="statement_print_batch",
        entity_id=batch_id,
        details={"file": kind},
    )
    return _document(content, "application/pdf" if kind == "pdf" else "text/csv", name)


@blp.route("/runs", methods=["POST"], endpoint="start_run")
@_documents(202, RunOutSchema, "the run, queued (or done when there was nothing to do)")
@mutation()
@blp.arguments(RunSchema)
def start_run(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Start a statement run (Celery chunks; in-process without a broker); answers its progress."""
    from claims_server.models.statements import StatementRun
    from claims_server.statements.services import run_progress, start_statement_run
    from claims_server.statements.tasks import enqueue_run

    session = db_session()
    as_of: date = data["as_of"] or clock.now().date()
    run, chunks = start_statement_run(
        session,
        as_of,
        user_id=current_principal().user_id,
        chunk_size=state().settings.STATEMENT_RUN_CHUNK_SIZE,
    )
    # Workers read the run row: it must be committed before the first chunk is queued.
    session.commit()
    run_id = run.id
    enqueue_run(run_id, chunks)
    session.expire_all()
    current = session.get(StatementRun, run_id)
    assert current is not None
    return run_progress(current), 202


@blp.route("/runs/<run_id>", methods=["GET"], endpoint="get_run")
@_documents(200, RunOutSchema)
@mutation()
def get_run(run_id: str) -> dict[str, Any]:
    """A statement run's progress: done / total and outcome counts (no patient data)."""
    from claims_server.models.statements import StatementRun
    from claims_server.statements.services import run_progress

    run = db_session().scalar(select(StatementRun).where(StatementRun.public_id == run_id))
    if run is None:
        raise NotFound("no statement run with that id")
    return run_progress(run)


# -- the patient, signed in through a statement link ---------------------------------------------


@patient_statement_blp.route("/statements/<statement_id>/pdf", methods=["GET"], endpoint="pdf")
@patient_statement_blp.doc(responses={"200": _file("application/pdf", "the statement PDF")})
@mutation()
def patient_statement_pdf(statement_id: str) -> Response:
    """My statement as a PDF; another patient's is 404."""
    return statement_pdf_response(_owned(statement_id))


@patient_statement_blp.route("/statements/<statement_id>/html", methods=["GET"], endpoint="html")
@patient_statement_blp.doc(responses={"200": _file("text/html", "the statement page")})
@mutation()
def patient_statement_html(statement_id: str) -> Response:
    """My statement as a web page; another patient's is 404."""
    return statement_html_response(_owned(statement_id))


# -- collection holds (statements stop until a person releases them) -------------------------------


class HoldListArgs(Schema):
    state = fields.String(load_default="open", validate=validate.OneOf(["open", "released", "all"]))


@blp.route("/holds", methods=["GET"], endpoint="list_holds")
@_documents(200, HoldListSchema)
@mutation()
@blp.arguments(HoldListArgs, location="query")
def list_holds(args: dict[str, Any]) -> dict[str, Any]:
    """Collection holds, open ones by default (oldest first): the accounts waiting for a person."""
    from claims_server.statements.services import hold_summary
    from claims_server.statements.services import list_holds as holds_of

    rows = holds_of(db_session(), args["state"])
    return {"items": [hold_summary(hold, patient) for hold, patient in rows]}


@blp.route("/holds/<hold_id>/release", methods=["POST"], endpoint="release_hold")
@_documents(200, HoldOutSchema)
@mutation()
def release_hold(hold_id: str) -> dict[str, Any]:
    """Release a hold: the patient's statements resume with the next run (audited)."""
    from claims_server.statements.services import hold_summary
    from claims_server.statements.services import release_hold as release

    session = db_session()
    hold = release(session, hold_id, user_id=current_principal().user_id)
    patient = session.get(Patient, hold.patient_id)
    return hold_summary(hold, patient.public_id if patient else None)
