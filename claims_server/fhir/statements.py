"""Patient statements → Invoice (one per statement; a line item per statement line)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from claims_server.fhir import search
from claims_server.fhir.claims import date_filter
from claims_server.fhir.common import day, instant, money, prune, reference
from claims_server.fhir.patients import ID_PARAM, PATIENT_PARAM, id_filter, patient_filter, practice_ref
from claims_server.models import Statement
from claims_server.models.statements import StatementState

INVOICE_PRICE_SYSTEM = "https://claims-server.dev/fhir/CodeSystem/statement-amount"
#: Statement state -> invoice-status (required binding).
_STATUS = {
    StatementState.DRAFT: "draft",
    StatementState.ISSUED: "issued",
    StatementState.DELIVERED: "issued",
    StatementState.PAID: "balanced",
    StatementState.VOID: "cancelled",
}


def _component(kind: str, code: str, cents: int) -> dict[str, Any]:
    return {
        "type": kind,
        "code": {"coding": [{"system": INVOICE_PRICE_SYSTEM, "code": code}]},
        "amount": money(cents),
    }


def invoice_to_fhir(statement: Statement) -> dict[str, Any]:
    lines = list(statement.lines)
    return prune(
        {
            "resourceType": "Invoice",
            "id": statement.public_id,
            "meta": {"lastUpdated": instant(statement.updated_at)},
            "status": _STATUS[statement.state],
            "type": {"text": "patient statement"},
            "subject": reference("Patient", statement.patient.public_id),
            "date": instant(statement.created_at),
            "issuer": practice_ref(statement.patient.practice),
            "lineItem": [
                {
                    "sequence": line.line_number,
                    "chargeItemCodeableConcept": {"text": line.description},
                    "priceComponent": [
                        _component("base", "charge", line.charge_cents),
                        _component("deduction", "insurance-paid", line.insurance_paid_cents),
                        _component("discount", "adjustments", line.adjustments_cents),
                        _component("deduction", "patient-paid", line.patient_paid_cents),
                        _component("informational", "balance", line.balance_cents),
                    ],
                }
                for line in lines
            ],
            "totalGross": money(sum(line.charge_cents for line in lines)),
            "totalNet": money(statement.balance_cents),
            "paymentTerms": f"due {day(statement.due_date)}",
        }
    )


def read_invoice(session: Session, public_id: str) -> dict[str, Any]:
    statement = session.scalar(
        select(Statement).where(Statement.public_id == public_id).options(selectinload(Statement.lines))
    )
    if statement is None:
        raise search.not_found("Invoice")
    return invoice_to_fhir(statement)


def search_invoices(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    handlers = {
        "_id": id_filter(Statement.public_id),
        "patient": patient_filter(Statement.patient_id),
        "subject": patient_filter(Statement.patient_id, "subject"),
        "date": date_filter(Statement.created_at, "date"),
    }
    query = search.apply(select(Statement).options(selectinload(Statement.lines)), args, handlers)
    found = search.page(session, query, Statement.id, args)
    return [invoice_to_fhir(s) for s in found.items], found.next_cursor


INVOICE = search.ResourceKind(
    "Invoice",
    read_invoice,
    search_invoices,
    (
        ID_PARAM,
        PATIENT_PARAM,
        search.SearchParam("subject", "reference", "the patient billed (Patient/<id>)"),
        search.SearchParam("date", "date", "when the statement was issued"),
    ),
)
