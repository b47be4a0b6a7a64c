"""The words on a statement: money, dates, service descriptions, reasons, dunning messages."""

from __future__ import annotations

from datetime import date

from coding import adjustment_codes, cpt, hcpcs
from statements.model import Bucket, DunningStage, Reason, ResponsibilityPart

#: Longest service description printed (one table row on the PDF).
DESCRIPTION_LIMIT = 60

#: Short labels for the CARCs behind most patient balances; other codes read "Your share".
_REASON_LABELS: dict[str, str] = {
    "1": "Deductible",
    "2": "Coinsurance",
    "3": "Copay",
    "66": "Blood deductible",
    "96": "Not covered",
    "204": "Not covered",
    "B9": "Not covered",
    "119": "Benefit limit reached",
    "242": "Out of network",
    "27": "Coverage ended",
    "26": "Coverage not yet started",
    "50": "Not medically necessary",
    "197": "Approval was needed",
}

_SELF_PAY = Reason(
    label="Amount due",
    explanation="No insurance payment applies to this service, so the amount is yours to pay.",
    amount_cents=0,
    code="",
)
_PENDING = Reason(
    label="Waiting on insurance",
    explanation="Your insurance has not finished with this service; you will owe only what it leaves.",
    amount_cents=0,
    code="",
)


def money(cents: int) -> str:
    """``123456`` -> ``$1,234.56``; negative amounts (credits) get a leading minus."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{frac:02d}"


def bucket_label(bucket: Bucket) -> str:
    """``Current``, ``31-60 days``, ``61-90 days``, ``Over 90 days``."""
    return "Current" if bucket is Bucket.CURRENT else f"{bucket.value.capitalize()} days"


def day(value: date) -> str:
    """US date as printed on statements: ``03/02/2026``."""
    return value.strftime("%m/%d/%Y")


def _shorten(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}\u2026"


def service_description(code: str, *, fallback: str | None = None) -> str:
    """What the service was, for a patient.

    CPT: the licensed short description when the practice loaded the AMA data
    (``coding.cpt.use``); we may not ship CPT text. HCPCS Level II: the CMS long
    description, shortened (the short one is an abbreviation such as "Ppps, subseq
    visit" that a patient cannot read). Otherwise the claim's own SV101-7 text, or the code.
    """
    code = code.strip().upper()
    licensed = cpt.licensed()
    if licensed is not None:
        found = licensed.get(code)
        if found is not None:
            return _shorten(found.short_description)
    level2 = hcpcs.default().get(code)
    if level2 is not None:
        return _shorten(level2.long_description or level2.short_description)
    if fallback:
        return _shorten(fallback)
    return f"Procedure {code}"


def reasons_for(
    parts: tuple[ResponsibilityPart, ...], balance_cents: int, *, pending_insurance: bool = False
) -> tuple[Reason, ...]:
    """Why the patient owes a line: one :class:`Reason` per CARC, in plain language.

    Explanations come from ``coding.adjustment_codes`` (the project's own words for each
    CARC); a code it does not know falls back to the group code's explanation. Parts with
    the same CARC are merged (an 835 may repeat a reason across CAS segments).
    """
    merged: dict[tuple[str, str], int] = {}
    for part in parts:
        if part.amount_cents:
            key = (part.group.upper(), part.reason.upper())
            merged[key] = merged.get(key, 0) + part.amount_cents
    out: list[Reason] = []
    for (group, reason), cents in merged.items():
        found = adjustment_codes.lookup("carc", reason) or adjustment_codes.lookup("group", group)
        explanation = found.patient_explanation if found is not None else "Your plan says this part is yours."
        out.append(Reason(_REASON_LABELS.get(reason, "Your share"), explanation, cents, f"{group}-{reason}"))
    if not out and balance_cents > 0:
        # No payer has named a patient share: either an insurer is still working on it (not
        # due yet, and never "yours to pay") or no insurance applies (self-pay).
        plain = _PENDING if pending_insurance else _SELF_PAY
        out.append(Reason(plain.label, plain.explanation, balance_cents, plain.code))
    return tuple(out)


def dunning_message(
    stage: DunningStage, *, practice_name: str, phone: str, amount_due: str, due_date: str
) -> str:
    """The message printed at the top of the statement for its dunning stage.

    Plain, polite and specific (amount, date, a phone number, the payment-plan offer):
    the aim is a payment, and a patient who cannot pay at once should call rather than
    ignore the letter.
    """
    call = f"call us at {phone}" if phone else "call our billing office"
    if stage is DunningStage.FIRST:
        return (
            f"Thank you for choosing {practice_name}. Your insurance has processed the visits "
            f"below; this is the part that is yours to pay. Please pay {amount_due} by {due_date}. "
            f"Questions about a charge? Please {call}."
        )
    if stage is DunningStage.REMINDER:
        return (
            f"Reminder: we have not yet received payment of {amount_due}. Please pay by {due_date}. "
            f"If you cannot pay the full amount, {call} and we can set up a monthly payment plan."
        )
    if stage is DunningStage.FINAL_NOTICE:
        return (
            f"Final notice: your balance of {amount_due} is past due. Please pay by {due_date} or "
            f"{call} to arrange a payment plan. If we do not hear from you, our billing office "
            "will review your account before any further action."
        )
    raise ValueError("a collections hold is reviewed by a person; no statement is sent")
