"""``/api/v1`` patient payments and payment plans (staff), and paying through the statement link.

Thin views: parse, call ``claims_server.payments``, answer. A payment needs an
``Idempotency-Key`` header: the same key answers the first payment (a double click
pays once), both at the HTTP layer (the stored answer is replayed) and in the ledger
(the receipt's key is unique, scoped to the caller).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import select

from claims_server.api_common.fields import Money, PublicId, StrictBoolean, StrictInteger, cents_to_money
from claims_server.api_common.openapi import idempotency_key_required, money_out, public_id_out
from claims_server.api_common.transactions import mutation, required_idempotency_key
from claims_server.app import db_session
from claims_server.errors import Unprocessable
from claims_server.models import AuditAction, Claim, Patient, PatientPayment, PaymentMethod, Statement
from claims_server.models.payments import PaymentPlan, PaymentReceipt, PaymentSource
from claims_server.payments import plans as plan_services
from claims_server.payments.processors import OnlinePaymentsDisabled, app_processor
from claims_server.payments.services import OnlineCharge, open_lines, patient_balance, record_patient_payment
from claims_server.security import clock
from claims_server.security.audit import audit_event
from claims_server.security.ownership import get_owned, scope_query
from claims_server.security.principal import current_principal

blp = Blueprint("payments", __name__, url_prefix="/api/v1", description="Patient payments and payment plans")
patient_pay_blp = Blueprint(
    "patient_pay",
    __name__,
    url_prefix="/api/v1/patient-link",
    description="What a patient signed in through a statement link can see and pay",
)


class PaymentSchema(Schema):
    """A front-desk or mailed payment. No free-text memo: ``patient_payments.memo`` is not an
    encrypted column, and free text is where PHI ends up."""

    amount = Money(required=True)
    method = fields.String(required=True, validate=validate.OneOf([m.value for m in PaymentMethod]))
    source = fields.String(
        load_default=PaymentSource.FRONT_DESK.value,
        validate=validate.OneOf([PaymentSource.FRONT_DESK.value, PaymentSource.MAIL.value]),
    )
    reference = fields.String(load_default=None, validate=validate.Length(1, 80))
    statement_id = PublicId(load_default=None)
    payment_plan_id = PublicId(load_default=None)
    allow_credit = StrictBoolean(load_default=False)
    received_on = fields.Date(load_default=None)

    @validates("received_on")
    def _not_future(self, value: date | None, **_: Any) -> None:
        if value is not None and value > clock.now().date():
            raise ValidationError("must not be in the future")


class LinkPaymentSchema(Schema):
    amount = Money(required=True)
    payment_plan_id = PublicId(load_default=None)
    # The one-use token the processor's hosted fields gave the browser (PCI DSS: card numbers
    # never reach this server); the simulated processor's are test_approve and test_decline.
    payment_token = fields.String(required=True, validate=validate.Length(1, 255))


class PlanSchema(Schema):
    claims = fields.List(PublicId(), required=True, validate=validate.Length(1, 50))
    monthly_amount = Money(required=True)
    first_due_date = fields.Date(required=True)


class AsOfSchema(Schema):
    as_of = fields.Date(load_default=None)


# -- response bodies (documented; the views build them with payment_json, _balance_json, _plan_json)


class PaymentOutSchema(Schema):
    id = public_id_out(required=True)
    amount = money_out(required=True)
    method = fields.String(required=True, validate=validate.OneOf([m.value for m in PaymentMethod]))
    source = fields.String(allow_none=True, validate=validate.OneOf([s.value for s in PaymentSource]))
    applied = money_out(allow_none=True)
    credit = money_out(allow_none=True)
    received_at = fields.DateTime(required=True)
    reference = fields.String(allow_none=True)


class PaymentOutcomeSchema(PaymentOutSchema):
    open_balance_after = money_out(required=True)
    replayed = StrictBoolean(required=True)


class PaymentListSchema(Schema):
    items = fields.List(fields.Nested(PaymentOutSchema), required=True)


class BalanceLineSchema(Schema):
    claim_id = public_id_out(allow_none=True)
    balance = money_out(required=True)
    patient_responsible_since = fields.Date(required=True)


class BalanceSchema(Schema):
    balance = money_out(required=True)
    lines = fields.List(fields.Nested(BalanceLineSchema), required=True)


class InstallmentSchema(Schema):
    number = StrictInteger(required=True)
    due_date = fields.Date(required=True)
    expected_cumulative = money_out(required=True)
    missed = StrictBoolean(required=True)


class PlanOutSchema(Schema):
    id = public_id_out(required=True)
    as_of = fields.Date(required=True)
    state = fields.String(required=True)
    total = money_out(required=True)
    paid = money_out(required=True)
    remaining = money_out(required=True)
    due = money_out(required=True)
    behind = money_out(required=True)
    in_good_standing = StrictBoolean(required=True)
    missed_installments = StrictInteger(required=True)
    next_due_date = fields.Date(allow_none=True, required=True)
    installments = fields.List(fields.Nested(InstallmentSchema), required=True)
    monthly_amount = money_out(required=True)
    first_due_date = fields.Date(required=True)


class PlanListSchema(Schema):
    items = fields.List(fields.Nested(PlanOutSchema), required=True)


class PlanCheckItemSchema(Schema):
    id = public_id_out(required=True)
    state = fields.String(required=True)
    missed = StrictInteger(required=True)


class PlanCheckSchema(Schema):
    as_of = fields.Date(required=True)
    plans = StrictInteger(required=True)
    newly_missed = StrictInteger(required=True)
    items = fields.List(fields.Nested(PlanCheckItemSchema), required=True)


def _documents(status: int, schema: type[Schema], description: str | None = None) -> Any:
    """Document a success body the view builds itself (no re-serialisation)."""
    return blp.alt_response(status, schema=schema, description=description, success=True)


def _ref(model: type[Any], public_id: str | None, field: str, patient_id: int) -> int | None:
    """Row id of a referenced statement or plan of this patient; a 422 naming ``field`` otherwise."""
    if public_id is None:
        return None
    row = db_session().scalar(select(model).where(model.public_id == public_id))
    if row is None or row.patient_id != patient_id:
        raise Unprocessable(
            f"{field}: not one of this patient's",
            errors=[
                {"field": field, "location": "json", "rule": "same_patient", "message": "not this patient's"}
            ],
        )
    return int(row.id)


def payment_json(payment: PatientPayment, receipt: PaymentReceipt | None) -> dict[str, Any]:
    return {
        "id": payment.public_id,
        "amount": cents_to_money(payment.amount_cents),
        "method": payment.method.value,
        "source": receipt.source.value if receipt else None,
        "applied": cents_to_money(receipt.applied_cents) if receipt else None,
        "credit": cents_to_money(receipt.credit_cents) if receipt else None,
        "received_at": payment.received_at.isoformat(),
        "reference": payment.reference,
    }


def _balance_json(patient_id: int) -> dict[str, Any]:
    session = db_session()
    lines = open_lines(session, patient_id)
    claims = {c.id: c.public_id for c in session.scalars(select(Claim).where(Claim.patient_id == patient_id))}
    return {
        "balance": cents_to_money(patient_balance(session, patient_id)),
        "lines": [
            {
                "claim_id": claims.get(line.claim_id) if line.claim_id else None,
                "balance": cents_to_money(line.balance_cents),
                "patient_responsible_since": line.first_billed.isoformat(),
            }
            for line in lines
        ],
    }


def _read_audit(
    event_type: str, entity_type: str, entity_id: str | None, patient_id: int, **details: Any
) -> None:
    audit_event(
        db_session(),
        action=AuditAction.READ,
        event_type=event_type,
        entity_type=entity_type,
        entity_id=entity_id,
        patient_id=patient_id,
        details=details or None,
    )


# -- staff --------------------------------------------------------------------------------------


@blp.route("/patients/<patient_id>/balance", methods=["GET"], endpoint="patient_balance")
@_documents(200, BalanceSchema)
@mutation()
def patient_balance_view(patient_id: str) -> dict[str, Any]:
    """What the patient owes, line by line, oldest first (audited)."""
    patient = get_owned(db_session(), Patient, patient_id, current_principal())
    _read_audit("patient_balance.read", "patient", patient.public_id, patient.id)
    return _balance_json(patient.id)


@blp.route("/patients/<patient_id>/payments", methods=["POST"], endpoint="record_payment")
@_documents(201, PaymentOutcomeSchema, "the payment, posted")
@_documents(200, PaymentOutcomeSchema, "a replay of the first answer (same Idempotency-Key)")
@mutation(idempotent=True)
@idempotency_key_required
@blp.arguments(PaymentSchema)
def record_payment(data: dict[str, Any], patient_id: str) -> tuple[dict[str, Any], int]:
    """Post a payment taken at the front desk or received by mail (Idempotency-Key required)."""
    session = db_session()
    patient = get_owned(session, Patient, patient_id, current_principal())
    outcome = record_patient_payment(
        session,
        patient_id=patient.id,
        amount_cents=data["amount"],
        source=PaymentSource(data["source"]),
        method=PaymentMethod(data["method"]),
        idempotency_key=required_idempotency_key("a payment"),
        received_on=data["received_on"],
        statement_id=_ref(Statement, data["statement_id"], "statement_id", patient.id),
        payment_plan_id=_ref(PaymentPlan, data["payment_plan_id"], "payment_plan_id", patient.id),
        allow_credit=data["allow_credit"],
        reference=data["reference"],
    )
    return outcome.to_json_dict(), 200 if outcome.replayed else 201


@blp.route("/patients/<patient_id>/payments", methods=["GET"], endpoint="list_payments")
@_documents(200, PaymentListSchema)
@mutation()
def list_payments(patient_id: str) -> dict[str, Any]:
    """The patient's payments, newest first (audited)."""
    session = db_session()
    patient = get_owned(session, Patient, patient_id, current_principal())
    rows = session.execute(
        select(PatientPayment, PaymentReceipt)
        .outerjoin(PaymentReceipt, PaymentReceipt.patient_payment_id == PatientPayment.id)
        .where(PatientPayment.patient_id == patient.id)
        .order_by(PatientPayment.id.desc())
    ).all()
    _read_audit("patient_payment.list", "patient", patient.public_id, patient.id, count=len(rows))
    return {"items": [payment_json(p, r) for p, r in rows]}


@blp.route("/payments/<payment_id>", methods=["GET"], endpoint="get_payment")
@_documents(200, PaymentOutSchema)
@mutation()
def get_payment(payment_id: str) -> dict[str, Any]:
    """One payment (audited)."""
    session = db_session()
    payment = get_owned(session, PatientPayment, payment_id, current_principal())
    receipt = session.scalar(select(PaymentReceipt).where(PaymentReceipt.patient_payment_id == payment.id))
    _read_audit("patient_payment.read", "patient_payment", payment.public_id, payment.patient_id)
    return payment_json(payment, receipt)


def _plan_json(plan: PaymentPlan, as_of: date) -> dict[str, Any]:
    status = plan_services.plan_status(db_session(), plan, as_of)
    return {
        **status.to_json_dict(),
        "monthly_amount": cents_to_money(plan.monthly_amount_cents),
        "first_due_date": plan.first_due_date.isoformat(),
    }


@blp.route("/patients/<patient_id>/payment-plans", methods=["POST"], endpoint="create_payment_plan")
@_documents(201, PlanOutSchema)
@mutation(idempotent=True)
@blp.arguments(PlanSchema)
def create_payment_plan(data: dict[str, Any], patient_id: str) -> tuple[dict[str, Any], int]:
    """Agree a monthly amount over the patient balances of selected claims."""
    session = db_session()
    patient = get_owned(session, Patient, patient_id, current_principal())
    claim_ids = []
    for public_id in data["claims"]:
        claim = session.scalar(select(Claim).where(Claim.public_id == public_id))
        if claim is None or claim.patient_id != patient.id:
            raise Unprocessable(
                "claims: not one of this patient's claims",
                errors=[{"field": "claims", "location": "json", "rule": "same_patient"}],
            )
        claim_ids.append(claim.id)
    today = clock.now().date()
    plan = plan_services.create_payment_plan(
        session,
        patient_id=patient.id,
        claim_ids=claim_ids,
        monthly_amount_cents=data["monthly_amount"],
        first_due_date=data["first_due_date"],
        today=today,
    )
    return _plan_json(plan, today), 201


@blp.route("/payment-plans/<plan_id>", methods=["GET"], endpoint="get_payment_plan")
@_documents(200, PlanOutSchema)
@mutation()
@blp.arguments(AsOfSchema, location="query")
def get_payment_plan(args: dict[str, Any], plan_id: str) -> dict[str, Any]:
    """A plan with its installments and whether it is in good standing (audited)."""
    plan = get_owned(db_session(), PaymentPlan, plan_id, current_principal())
    _read_audit("payment_plan.read", "payment_plan", plan.public_id, plan.patient_id)
    return _plan_json(plan, args["as_of"] or clock.now().date())


@blp.route("/payment-plans/<plan_id>/cancel", methods=["POST"], endpoint="cancel_payment_plan")
@_documents(200, PlanOutSchema)
@mutation()
def cancel_payment_plan(plan_id: str) -> dict[str, Any]:
    """End an active plan (statements resume for its balances)."""
    session = db_session()
    plan = plan_services.cancel_payment_plan(
        session, get_owned(session, PaymentPlan, plan_id, current_principal())
    )
    return _plan_json(plan, clock.now().date())


@blp.route("/payment-plans/check", methods=["POST"], endpoint="check_payment_plans")
@_documents(200, PlanCheckSchema)
@mutation()
@blp.arguments(AsOfSchema)
def check_payment_plans(data: dict[str, Any]) -> dict[str, Any]:
    """Detect missed installments now (the daily task does the same)."""
    as_of = data["as_of"] or clock.now().date()
    checks = plan_services.check_payment_plans(db_session(), as_of)
    return {
        "as_of": as_of.isoformat(),
        "plans": len(checks),
        "newly_missed": sum(c.newly_missed for c in checks),
        "items": [
            {"id": c.plan.public_id, "state": c.plan.state.value, "missed": c.status.missed_count}
            for c in checks
        ],
    }


# -- the patient, signed in through a statement link ---------------------------------------------


@patient_pay_blp.route("/balance", methods=["GET"], endpoint="balance")
@patient_pay_blp.alt_response(200, schema=BalanceSchema, success=True)
@mutation()
def own_balance() -> dict[str, Any]:
    """What I owe, line by line."""
    principal = current_principal()
    assert principal.patient_id is not None
    _read_audit("patient_balance.read", "patient", None, principal.patient_id)
    return _balance_json(principal.patient_id)


@patient_pay_blp.route("/statements/<statement_id>/payments", methods=["POST"], endpoint="pay_statement")
@patient_pay_blp.alt_response(201, schema=PaymentOutcomeSchema, success=True)
@patient_pay_blp.alt_response(
    200, schema=PaymentOutcomeSchema, description="a replay (same Idempotency-Key)", success=True
)
@mutation(idempotent=True)
@idempotency_key_required
@patient_pay_blp.arguments(LinkPaymentSchema)
def pay_statement(data: dict[str, Any], statement_id: str) -> tuple[dict[str, Any], int]:
    """Pay toward one of my statements: charged by the card processor, then posted (Idempotency-Key
    required; never more than I owe; 409 when online payments are off, 402 when the card is declined)."""
    session = db_session()
    statement = get_owned(session, Statement, statement_id, current_principal())
    processor = app_processor()
    if processor is None:
        raise OnlinePaymentsDisabled()
    outcome = record_patient_payment(
        session,
        patient_id=statement.patient_id,
        amount_cents=data["amount"],
        source=PaymentSource.LINK,
        method=PaymentMethod.PORTAL,
        idempotency_key=required_idempotency_key("a payment"),
        statement_id=statement.id,
        payment_plan_id=_ref(PaymentPlan, data["payment_plan_id"], "payment_plan_id", statement.patient_id),
        charge=OnlineCharge(processor, data["payment_token"]),
    )
    return outcome.to_json_dict(), 200 if outcome.replayed else 201


@patient_pay_blp.route("/payment-plans", methods=["GET"], endpoint="payment_plans")
@patient_pay_blp.alt_response(200, schema=PlanListSchema, success=True)
@mutation()
def own_payment_plans() -> dict[str, Any]:
    """My payment plans and where each stands."""
    session = db_session()
    principal = current_principal()
    plans = session.scalars(
        scope_query(select(PaymentPlan).order_by(PaymentPlan.id), principal, PaymentPlan)
    ).all()
    assert principal.patient_id is not None
    _read_audit("payment_plan.list", "payment_plan", None, principal.patient_id, count=len(plans))
    today = clock.now().date()
    return {"items": [_plan_json(plan, today) for plan in plans]}
