"""The words on a statement: money, dates, service descriptions, reasons, dunning messages."""

from __future__ import annotations

from datetime import date

from coding import cpt, hcpcs
from statements.explanations import explain
from statements.model import Bucket, DunningStage, Reason, ResponsibilityPart

#: Longest service description printed (one table row on the PDF).
DESCRIPTION_LIMIT = 60

#: Plain words for a CPT code without the licensed text, by code range (the ranges are
#: facts of the CPT numbering; the words are ours, not the AMA's descriptions).
_CPT_RANGES: tuple[tuple[str, str, str], ...] = (
    ("99202", "99215", "Office visit"),
    ("99221", "99239", "Hospital visit"),
    ("99242", "99255", "Consultation"),
    ("99281", "99288", "Emergency visit"),
    ("99304", "99316", "Nursing facility visit"),
    ("99341", "99350", "Home visit"),
    ("99381", "99429", "Preventive care visit"),
    ("99441", "99458", "Telephone or online visit"),
    ("99202", "99499", "Visit"),
    ("36415", "36416", "Blood draw"),
    ("90460", "90474", "Vaccine given"),
    ("90476", "90759", "Vaccine"),
    ("00100", "01999", "Anesthesia"),
    ("10004", "69990", "Procedure"),
    ("70010", "79999", "Imaging"),
    ("80047", "89398", "Lab test"),
    ("90281", "99199", "Medical service"),
)

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
    """What the service was, for a patient, without the code (the renderers print it once).

    CPT: the licensed short description when the practice loaded the AMA data
    (``coding.cpt.use``); we may not ship CPT text. HCPCS Level II: the CMS long
    description, shortened (the short one is an abbreviation such as "Ppps, subseq
    visit" that a patient cannot read). Otherwise the claim's own SV101-7 text, then plain
    words by CPT code range ("Office visit" for 99202-99215), else an empty string: the
    row then shows the code alone, never the code twice.
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
    if fallback and fallback.strip().upper() != code:
        return _shorten(fallback)
    if code.isdigit() and len(code) == 5:
        for low, high, words in _CPT_RANGES:
            if low <= code <= high:
                return words
    return ""


def service_text(code: str, description: str) -> str:
    """``99213 Office visit``; the code alone when there is no description; never the code twice."""
    code, description = code.strip(), description.strip()
    if not description or description.upper() == code.upper():
        return code
    if not code:
        return description
    return f"{code} {description}"


def reasons_for(
    parts: tuple[ResponsibilityPart, ...],
    balance_cents: int,
    *,
    pending_insurance: bool = False,
    balance_billing: bool = False,
) -> tuple[Reason, ...]:
    """Why the patient owes a line: one :class:`Reason` per (group, CARC), in plain language.

    The words come from :mod:`statements.explanations`, keyed by group and reason (PR-45 is
    not CO-45); a part that is not billable to the patient (CO/OA/PI/CR, PR-45 without
    balance billing) is never printed as owed. Parts with the same pair are merged (an
    835 may repeat a reason across CAS segments).
    """
    merged: dict[tuple[str, str], int] = {}
    for part in parts:
        if part.amount_cents:
            key = (part.group.strip().upper(), part.reason.strip().upper())
            merged[key] = merged.get(key, 0) + part.amount_cents
    out: list[Reason] = []
    for (group, reason), cents in merged.items():
        found = explain(group, reason, balance_billing=balance_billing)
        if not found.billable:
            continue
        out.append(Reason(found.label, found.text, cents, found.code))
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
