"""Charge entry: key a new claim, or fix a draft or rejected one, from the keyboard.

``/ui/claims/new`` (from the claims list, or a patient's page with ``?patient=``; with
``?copy=<claim>`` it starts from a previous claim of the patient) and
``/ui/claims/<id>/charges`` are one screen. It posts the claim JSON's fields
(``coverage``, ``dx-0``, ``line-0-procedure``...: :class:`ChargeForm`); the view turns them
into the API's claim document and calls the API's services (``create_claim``,
``update_claim``, ``corrections.resubmit_corrected``), so the schema, the references and
the scrubber are the ones every other door uses. An empty charge is the practice's fee
schedule's fee times the line's units (``practice.fee_schedule.default_charge_cents``). Today's
date is the office's (``SCHEDULER_TIMEZONE``), not the server's UTC date.

``POST /ui/claims/check`` runs ``validate_claim`` on the same fields while the biller types
(charges.js, debounced) and answers JSON: field errors and scrub findings by form field,
code descriptions, default charges and the total. ``GET /ui/codes/<kind>`` suggests
diagnosis and procedure codes (``coding.lookup``; procedures also from the practice's fee
schedule, with its own labels). Without JavaScript the form still works: the line
buttons post it back (``op``) and the page returns changed, nothing saved; findings show
beside their fields after a save. See docs/charge-entry.md.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import wraps
from typing import Any

from flask import Response, flash, g, jsonify, redirect, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import PUBLIC_ID_PATTERN, cents_to_money, money_text_to_cents
from claims_server.api_common.transactions import mutation
from claims_server.app import db_session
from claims_server.app import state as app_state
from claims_server.claims import state
from claims_server.claims.schemas import MAX_DIAGNOSES, MAX_LINES, ClaimInSchema, ClaimOutSchema
from claims_server.claims.services import (
    claim_to_json,
    create_claim,
    flatten_errors,
    get_claim,
    load_claim_json,
    new_patient_control_number,
    update_claim,
    validate_claim,
)
from claims_server.corrections import services as corrections
from claims_server.errors import ApiError, Conflict, NotFound, Unprocessable
from claims_server.models import Claim, ClaimState, Coverage, Patient, Practice, Provider, UnitBasis
from claims_server.models.common import utcnow
from claims_server.patients import services as patients
from claims_server.patients.schemas import PatientSearchSchema
from claims_server.practice.fee_schedule import (
    FeeLookup,
    default_charge_cents,
    fee_lookup,
    list_fees,
    units_of,
)
from claims_server.scheduler.jobs import local_today
from claims_server.security.enforce import refuse
from claims_server.security.policy import rule_for
from claims_server.security.principal import current_principal
from claims_server.ui.blueprint import bp, money, page
from claims_server.ui.patients import SEARCH_FIELDS
from coding import lookup
from coding.reference import PLACES_OF_SERVICE

#: Diagnosis fields always shown (5-12 sit in a "More diagnoses" group).
SHOWN_DIAGNOSES = 4
#: Claim-level fields of the screen (``service_date``: the DOS of every line left without one).
CLAIM_VALUES = (
    "coverage",
    "rendering_provider",
    "referring_provider",
    "facility_provider",
    "place_of_service",
    "service_date",
    "prior_authorization",
)
#: Fields of a line (``source``: the stored line it came from, so fields the screen does not
#: show, such as a line's own rendering provider, stay with it when lines move; ``unit_basis``,
#: hidden: UN or MJ, which decides whether the fee schedule prices the line).
LINE_VALUES = (
    "procedure",
    "modifiers",
    "units",
    "diagnosis_pointers",
    "charge",
    "service_date",
    "description",
    "ndc",
    "drug_quantity",
    "drug_unit",
    "unit_basis",
    "source",
)
#: Line fields posted as hidden inputs: a finding about one is shown beside the procedure.
_HIDDEN_LINE_VALUES = frozenset({"unit_basis", "source"})
#: What a line keeps from its stored line when the screen does not show it.
_KEPT_LINE_FIELDS = (
    "service_date_end",
    "place_of_service",
    "rendering_provider",
    "revenue_code",
)
DRUG_UNITS = (
    ("", "Unit"),
    ("UN", "UN (units)"),
    ("ML", "ML (milliliters)"),
    ("GR", "GR (grams)"),
    ("ME", "ME (milligrams)"),
    ("F2", "F2 (international units)"),
)
_LINE_KEY = re.compile(r"^line-(\d{1,4})-([a-z_]+)$")
_OP = re.compile(r"^(add|remove|up|down)(?:-(\d{1,4}))?$")
_SPLIT = re.compile(r"[\s,]+")
_ORDER_NAMES = {1: "Primary", 2: "Secondary", 3: "Tertiary"}


def timed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``Server-Timing: app;dur=<ms>`` (from the request's start, commit included) so a
    browser, the benchmark or a person with the developer tools sees the server's own time."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        if isinstance(response, Response):
            started = g.get("started", time.perf_counter())
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return wrapper


def may(endpoint: str) -> bool:
    """Whether the signed-in user's role may call ``endpoint`` (the policy table decides)."""
    rule = rule_for(endpoint)
    return rule is not None and current_principal().role in rule.roles


bp.add_app_template_global(may, "ui_can")


# -- the form ----------------------------------------------------------------------------------


@dataclass
class ChargeForm:
    """The screen's fields as typed: claim values, 12 diagnosis slots, the non-blank lines.

    ``line_indexes[k]`` is the posted index of line ``k`` (JavaScript may leave gaps), so an
    answer about ``lines[k]`` names the field the biller sees.
    """

    patient: str
    values: dict[str, str]
    diagnoses: list[str]
    lines: list[dict[str, str]]
    line_indexes: list[int] = field(default_factory=list)
    patient_control_number: str = ""
    version: str = ""

    def __post_init__(self) -> None:
        if not self.line_indexes:
            self.line_indexes = list(range(len(self.lines)))

    def line_field(self, k: int, name: str) -> str:
        return f"line-{self.line_indexes[k]}-{name}"

    def renumbered(self) -> ChargeForm:
        """The same form with lines numbered 0..n-1 (how the page is drawn again)."""
        return ChargeForm(
            self.patient,
            self.values,
            self.diagnoses,
            self.lines,
            list(range(len(self.lines))),
            self.patient_control_number,
            self.version,
        )


def blank_line() -> dict[str, str]:
    return dict.fromkeys(LINE_VALUES, "")


def _is_blank(line: Mapping[str, str]) -> bool:
    return not any(
        line.get(name) for name in ("procedure", "modifiers", "charge", "description", "ndc", "drug_quantity")
    )


def read_form(form: Mapping[str, str]) -> ChargeForm:
    """The posted fields (blank lines dropped, lines in their posted order)."""
    values = {name: (form.get(name) or "").strip() for name in CLAIM_VALUES}
    diagnoses = [(form.get(f"dx-{i}") or "").strip() for i in range(MAX_DIAGNOSES)]
    posted: dict[int, dict[str, str]] = {}
    for key in form:
        match = _LINE_KEY.match(key)
        if match and match.group(2) in LINE_VALUES:
            line = posted.setdefault(int(match.group(1)), blank_line())
            line[match.group(2)] = (form.get(key) or "").strip()
    indexes = [i for i in sorted(posted) if not _is_blank(posted[i])]
    return ChargeForm(
        patient=(form.get("patient") or "").strip(),
        values=values,
        diagnoses=diagnoses,
        lines=[posted[i] for i in indexes],
        line_indexes=indexes,
        patient_control_number=(form.get("patient_control_number") or "").strip(),
        version=(form.get("version") or "").strip(),
    )


def apply_op(form: ChargeForm, op: str) -> bool:
    """A line button pressed without JavaScript (``add``, ``remove-<i>``, ``up-<i>``, ``down-<i>``,
    ``i`` the line's posted index); True when the form changed. The form is renumbered."""
    match = _OP.match(op)
    if match is None:
        return False
    action, index = match.group(1), match.group(2)
    if action == "add":
        form.lines.append(blank_line())
        form.line_indexes.append(max(form.line_indexes, default=-1) + 1)
        return True
    if index is None or int(index) not in form.line_indexes:
        return False
    k = form.line_indexes.index(int(index))
    if action == "remove":
        del form.lines[k], form.line_indexes[k]
    elif action == "up" and k > 0:
        form.lines[k - 1], form.lines[k] = form.lines[k], form.lines[k - 1]
    elif action == "down" and k < len(form.lines) - 1:
        form.lines[k + 1], form.lines[k] = form.lines[k], form.lines[k + 1]
    return True


def _dotted(code: str) -> str:
    code = code.strip().upper().replace(".", "")
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def form_of_claim(
    doc: Mapping[str, Any], *, copy_dos: date | None = None, fees: FeeLookup | None = None
) -> ChargeForm:
    """A stored claim (``ClaimOutSchema`` dump) as the screen's fields.

    With ``copy_dos`` it is the start of a new claim: every date becomes ``copy_dos``, the
    lines lose their link to the stored ones, and a line whose code the fee schedule prices is
    charged the schedule's current fee times the line's units (else the previous claim's charge).
    """
    dates = sorted({line["service_date"] for line in doc["lines"]})
    claim_dos = dates[0] if dates else ""
    lines = []
    for line in doc["lines"]:
        charge = line["charge"]
        if copy_dos is not None and fees is not None:
            cents = default_charge_cents(
                fees(line["procedure"], line["modifiers"]), units_of(line["units"]), line.get("unit_basis")
            )
            charge = cents_to_money(cents) if cents is not None else charge
        lines.append(
            {
                "procedure": line["procedure"],
                "modifiers": " ".join(line["modifiers"]),
                "units": str(line["units"]),
                "diagnosis_pointers": " ".join(str(p) for p in line["diagnosis_pointers"]),
                "charge": charge,
                "service_date": ""
                if copy_dos is not None or line["service_date"] == claim_dos
                else line["service_date"],
                "description": line.get("description") or "",
                "unit_basis": line.get("unit_basis") or "",
                "ndc": line.get("ndc") or "",
                "drug_quantity": line.get("drug_quantity") or "",
                "drug_unit": line.get("drug_unit") or "",
                "source": "" if copy_dos is not None else str(line["line_number"]),
            }
        )
    values = {name: doc.get(name) or "" for name in CLAIM_VALUES}
    values["service_date"] = copy_dos.isoformat() if copy_dos is not None else claim_dos
    diagnoses = [_dotted(code) for code in doc["diagnoses"]]
    return ChargeForm(
        patient=doc["patient"],
        values=values,
        diagnoses=diagnoses + [""] * (MAX_DIAGNOSES - len(diagnoses)),
        lines=lines,
        version="" if copy_dos is not None else str(doc["version"]),
    )


# -- form → claim document ---------------------------------------------------------------------

_IN_FIELDS = frozenset(name for name, f in ClaimInSchema().fields.items() if not f.dump_only)


def _pointer(text: str) -> int | str:
    """ASCII digits as an int; anything else as typed, for the schema to refuse beside the field."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else text


@dataclass(frozen=True)
class LineDefault:
    """What the fee schedule makes of a line left without a charge: ``cents`` (fee times units) or
    the ``problem`` that makes the biller key it."""

    cents: int | None
    fee_cents: int | None = None
    units: Decimal | None = None
    problem: str = ""

    def text(self) -> str:
        """The hint under the charge field ("Fee schedule: $12.50 x 3 = $37.50", with a times sign)."""
        if self.cents is None or self.fee_cents is None:
            return ""
        if self.units == 1:
            return f"Fee schedule: ${cents_to_money(self.cents)}"
        fee, cents = cents_to_money(self.fee_cents), cents_to_money(self.cents)
        return f"Fee schedule: ${fee} \N{MULTIPLICATION SIGN} {self.units} = ${cents}"


def _modifiers_of(text: str) -> list[str]:
    return [m for m in _SPLIT.split(text.upper()) if m]


def line_default(line: Mapping[str, str], fees: FeeLookup) -> LineDefault:
    """The charge of ``line`` (the form's fields) if the biller leaves it empty."""
    procedure = line["procedure"].upper()
    if not procedure:
        return LineDefault(None, problem="Key the charge.")
    fee = fees(procedure, _modifiers_of(line["modifiers"]))
    units = units_of(line["units"])
    cents = default_charge_cents(fee, units, line.get("unit_basis"))
    if cents is not None:
        return LineDefault(cents, fee, units)
    if fee is None:
        problem = f"Key the charge: the fee schedule has none for {procedure}."
    elif (line.get("unit_basis") or "").upper() == UnitBasis.MINUTES.value:
        problem = "Key the charge: anesthesia minutes (MJ) are not priced from the fee schedule."
    else:
        problem = "Key the charge, or fix the units: the fee schedule's charge is per unit."
    return LineDefault(None, fee, units, problem)


def _pointers_of(text: str) -> list[int | str]:
    return [_pointer(p) for p in _SPLIT.split(text) if p]


def claim_document(
    form: ChargeForm, fees: FeeLookup, *, stored: Mapping[str, Any] | None = None, ready: bool = False
) -> tuple[dict[str, Any], dict[str, str], int]:
    """The claim JSON document the form describes, the form's own refusals by field (money as
    typed, a diagnosis gap, a charge neither keyed nor in the fee schedule, a line without
    pointers on a claim with several diagnoses) and the total in cents.

    ``stored``: the claim being edited (its dump), whose fields the screen does not show are
    kept as they are.
    """
    errors: dict[str, str] = {}
    doc: dict[str, Any] = {k: v for k, v in (stored or {}).items() if k in _IN_FIELDS}
    doc["patient"] = form.patient
    for name in CLAIM_VALUES:
        if name != "service_date":
            doc[name] = form.values.get(name) or None
    if form.patient_control_number and stored is None:
        doc["patient_control_number"] = form.patient_control_number
    typed = [code.upper() for code in form.diagnoses]
    last = max((i for i, code in enumerate(typed) if code), default=-1)
    for i in range(last):
        if not typed[i]:
            errors[f"dx-{i}"] = (
                "Fill this diagnosis or move the later ones up: pointers count positions 1 to 12."
            )
    doc["diagnoses"] = [code for code in typed if code]
    claim_dos = form.values.get("service_date", "")
    stored_lines = {str(line["line_number"]): line for line in (stored or {}).get("lines", [])}
    total = 0
    lines = []
    for k, line in enumerate(form.lines):
        source = stored_lines.get(line.get("source", ""))
        item: dict[str, Any] = {name: source[name] for name in _KEPT_LINE_FIELDS if source and name in source}
        if source is not None and source["line_number"] == k + 1:
            item["line_control_number"] = source.get("line_control_number")  # only where it stays
        procedure = line["procedure"].upper()
        charge: str | None = None
        if line["charge"]:
            cents, problem = money_text_to_cents(line["charge"], allow_zero=True)
            if cents is None:
                errors[form.line_field(k, "charge")] = problem or "not an amount"
            else:
                charge, total = cents_to_money(cents), total + cents
        else:
            default = line_default(line, fees)
            if default.cents is None:
                errors[form.line_field(k, "charge")] = default.problem
            else:
                charge, total = cents_to_money(default.cents), total + default.cents
        dos = line["service_date"] or claim_dos
        if not dos:
            errors.setdefault("service_date", "Enter the date of service.")
        pointers = _pointers_of(line["diagnosis_pointers"])
        if not pointers and len(doc["diagnoses"]) > 1:
            errors[form.line_field(k, "diagnosis_pointers")] = (
                f"Enter the diagnoses this line treats (1 to {len(doc['diagnoses'])}, e.g. 1 2): "
                "the claim has several."
            )
        if line["unit_basis"]:
            item["unit_basis"] = line["unit_basis"].upper()
        item.update(
            procedure=procedure,
            modifiers=_modifiers_of(line["modifiers"]),
            description=line["description"] or None,
            units=line["units"] or "1",
            diagnosis_pointers=pointers or [1],
            charge=charge,
            service_date=dos or None,
            ndc=line["ndc"].replace("-", "") or None,
            drug_quantity=line["drug_quantity"] or None,
            drug_unit=line["drug_unit"].upper() or None,
        )
        lines.append(item)
    doc["lines"] = lines
    doc["ready"] = ready
    if stored is not None:
        doc["version"] = _pointer(form.version) if form.version else None
    return doc, errors, total


#: Scrubber and schema paths of claim fields the screen does not show: shown at the top.
_CLAIM_LEVEL = frozenset(CLAIM_VALUES)
_LINE_FIELDS_SHOWN = frozenset(LINE_VALUES) - _HIDDEN_LINE_VALUES


def field_name(path: str, form: ChargeForm) -> str:
    """The form field a claim JSON path points at (``lines[1].modifiers[0]`` → ``line-1-modifiers``,
    ``diagnoses[0]`` → ``dx-0``, ``coverage.member_id`` → ``coverage``); a section
    (``_lines``, ``_diagnoses``, ``_patient``, ``_claim``) when the screen has no such field."""
    line = re.match(r"^lines[.\[](\d+)\]?(?:\.(\w+))?", path)
    if line:
        k, name = int(line.group(1)), line.group(2) or ""
        if k >= len(form.line_indexes):
            return "_lines"
        return form.line_field(k, name if name in _LINE_FIELDS_SHOWN else "procedure")
    dx = re.match(r"^diagnoses[.\[](\d+)", path)
    if dx:
        return f"dx-{dx.group(1)}"
    head = re.split(r"[.\[]", path, maxsplit=1)[0]
    if head in ("lines", "total_charge"):
        return "_lines"
    if head == "diagnoses":
        return "_diagnoses"
    if head == "patient" and path != "patient":
        return "_patient"
    if head in _CLAIM_LEVEL:
        return head
    return "_claim"


def errors_by_field(exc: ApiError, form: ChargeForm) -> dict[str, str]:
    out: dict[str, str] = {"_form": exc.detail} if exc.status == 409 else {}
    for error in exc.errors:
        name = field_name(str(error.get("field") or ""), form) if error.get("field") else "_form"
        out.setdefault(name, str(error.get("message") or exc.detail))
    if not out:
        out["_form"] = exc.detail
    return out


def findings_by_field(findings: list[dict[str, Any]], form: ChargeForm) -> dict[str, list[dict[str, Any]]]:
    """Errors and warnings keyed by the field they point at (infos are left out)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for finding in findings:
        if finding.get("severity") == "info":
            continue
        name = field_name(str(finding.get("path") or ""), form)
        shown = {k: finding.get(k) for k in ("severity", "message", "hint", "rule_id")}
        out.setdefault(name, []).append(shown)
    return out


def pointer_findings(form: ChargeForm) -> list[dict[str, Any]]:
    """A warning beside each line left without pointers on a claim with exactly one diagnosis:
    the line points at it (with several, ``claim_document`` refuses the line instead)."""
    if sum(1 for code in form.diagnoses if code) != 1:
        return []
    return [
        {
            "path": f"lines[{k}].diagnosis_pointers",
            "severity": "warning",
            "rule_id": "UI_POINTER_DEFAULT",
            "message": "No pointer given: pointing at diagnosis 1.",
            "hint": None,
        }
        for k, line in enumerate(form.lines)
        if not _pointers_of(line["diagnosis_pointers"])
    ]


def counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "errors": sum(1 for f in findings if f.get("severity") == "error"),
        "warnings": sum(1 for f in findings if f.get("severity") == "warning"),
    }


# -- what the page shows beside the fields -----------------------------------------------------


def _date_or_none(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass
class Hints:
    """Descriptions of the codes typed, default charges (and how they are made: fee times units)
    and the total, by form field."""

    descriptions: dict[str, str]
    fees: dict[str, str]
    total_cents: int
    fee_texts: dict[str, str] = field(default_factory=dict)


def hints_for(form: ChargeForm, fees: FeeLookup, labels: Mapping[str, str], total_cents: int) -> Hints:
    dos = _date_or_none(form.values.get("service_date", ""))
    descriptions: dict[str, str] = {}
    for i, code in enumerate(form.diagnoses):
        if code:
            found = lookup.describe_diagnosis(code, dos)
            if found is not None:
                descriptions[f"dx-{i}"] = found.description or ""
    defaults: dict[str, str] = {}
    texts: dict[str, str] = {}
    for k, line in enumerate(form.lines):
        procedure = line["procedure"].upper()
        if not procedure:
            continue
        line_dos = _date_or_none(line["service_date"]) or dos
        found = lookup.describe_procedure(procedure, line_dos)
        text = (found.description if found is not None else None) or labels.get(procedure)
        if text:
            descriptions[form.line_field(k, "procedure")] = text
        default = line_default(line, fees)
        if default.cents is not None:
            defaults[form.line_field(k, "charge")] = cents_to_money(default.cents)
            texts[form.line_field(k, "charge")] = default.text()
    return Hints(descriptions, defaults, total_cents, texts)


def fee_labels(session: Session, practice_id: int) -> dict[str, str]:
    """The practice's own label of each code in its fee schedule (not AMA text: theirs)."""
    return {
        e.procedure_code: e.description
        for e in list_fees(session, practice_id)
        if e.description and not e.modifier
    }


# -- rendering ---------------------------------------------------------------------------------

_warm_up = threading.Lock()
_warmed = False


def warm_code_lookups() -> None:
    """Build the code indexes (about a second) in the background the first time a process draws
    the screen, so the biller's first suggestion does not wait for it."""
    global _warmed
    with _warm_up:
        if _warmed:
            return
        _warmed = True
    threading.Thread(target=lookup.warm_up, name="code-lookup-warm-up", daemon=True).start()


def _coverage_options(coverages: list[Coverage]) -> list[tuple[str, str]]:
    options = []
    for c in coverages:
        text = f"{_ORDER_NAMES.get(c.coverage_order, 'Coverage')}: {c.payer.name}"
        if c.plan_name:
            text += f", {c.plan_name}"
        if not c.active:
            text += " (inactive)"
        elif c.effective_end is not None:
            text += f" (to {c.effective_end.isoformat()})"
        options.append((c.public_id, text))
    return options


def default_coverage(coverages: list[Coverage], day: date) -> str:
    """The primary coverage in force on ``day`` (the latest-starting one), else none."""
    primaries = [c for c in coverages if c.coverage_order == 1 and c.is_effective_on(day)]
    primaries.sort(key=lambda c: c.effective_start, reverse=True)
    return primaries[0].public_id if primaries else ""


def _provider_options(
    providers: list[Provider], flag: str, selected: str, none_label: str
) -> list[tuple[str, str]]:
    options = [("", none_label)]
    for p in providers:
        if (getattr(p, flag) and p.active) or p.public_id == selected:
            options.append((p.public_id, f"{p.display_name} (NPI {p.npi})"))
    return options


def office_today() -> date:
    """Today where the office is (``SCHEDULER_TIMEZONE``), not the server's UTC date: an office in
    New York keying after 19:00 must not get tomorrow's date of service."""
    return local_today(utcnow(), app_state().settings.SCHEDULER_TIMEZONE)


def new_form(patient: Patient, coverages: list[Coverage], providers: list[Provider]) -> ChargeForm:
    """A new claim's fields: primary coverage, the only rendering provider, office, today."""
    today = office_today()
    rendering = [p for p in providers if p.is_rendering and p.active]
    values = dict.fromkeys(CLAIM_VALUES, "")
    values.update(
        coverage=default_coverage(coverages, today),
        rendering_provider=rendering[0].public_id if len(rendering) == 1 else "",
        place_of_service="11",
        service_date=today.isoformat(),
    )
    return ChargeForm(
        patient=patient.public_id,
        values=values,
        diagnoses=[""] * MAX_DIAGNOSES,
        lines=[blank_line()],
        patient_control_number=new_patient_control_number(),
    )


def render_screen(
    session: Session,
    patient: Patient,
    form: ChargeForm,
    *,
    claim: Claim | None = None,
    errors: Mapping[str, str] | None = None,
    findings: list[dict[str, Any]] | None = None,
    status: int = 200,
    total_cents: int | None = None,
) -> Response:
    """The charge entry screen for ``patient`` with ``form``'s values, errors and findings."""
    warm_code_lookups()
    form = form.renumbered()
    if not form.lines:
        form.lines.append(blank_line())
        form.line_indexes.append(0)
    fees = fee_lookup(session, patient.practice_id)
    labels = fee_labels(session, patient.practice_id)
    if total_cents is None:
        total_cents = claim_document(form, fees)[2]
    hints = hints_for(form, fees, labels, total_cents)
    coverages = patients.list_coverages(session, patient)
    providers = list(
        session.scalars(
            select(Provider)
            .where(Provider.practice_id == patient.practice_id)
            .order_by(Provider.last_name, Provider.id)
        )
    )
    values = form.values
    previous: list[Claim] = []
    if claim is None:
        previous = list(
            session.scalars(
                select(Claim).where(Claim.patient_id == patient.id).order_by(Claim.id.desc()).limit(10)
            )
        )
    all_findings = [*(findings or []), *pointer_findings(form)]
    by_field = findings_by_field(all_findings, form)
    focus = next((name for name in (errors or {}) if not name.startswith("_")), None)
    focus = focus or next(
        (
            n
            for n, found in by_field.items()
            if not n.startswith("_") and any(f["severity"] == "error" for f in found)
        ),
        None,
    )
    if focus is None and claim is None:
        focus = "dx-0" if values["coverage"] else "coverage"
    shown_dx = max(SHOWN_DIAGNOSES, max((i + 1 for i, c in enumerate(form.diagnoses) if c), default=0))
    return page(
        "charges.html",
        status,
        patient=patient,
        claim=claim,
        form=form,
        values=values,
        errors=dict(errors or {}),
        findings=by_field,
        counts=counts(all_findings),
        focus=focus,
        hints=hints,
        coverage_options=[("", "Choose the coverage"), *_coverage_options(coverages)],
        rendering_options=_provider_options(
            providers, "is_rendering", values["rendering_provider"], "The practice (billing provider)"
        ),
        referring_options=_provider_options(providers, "is_referring", values["referring_provider"], "None"),
        facility_options=_provider_options(
            providers, "is_facility", values["facility_provider"], "None (the practice's address)"
        ),
        pos_options=[(code, f"{code} {pos.name}") for code, pos in PLACES_OF_SERVICE.items()],
        drug_units=DRUG_UNITS,
        shown_dx=min(shown_dx, MAX_DIAGNOSES) if shown_dx > SHOWN_DIAGNOSES else SHOWN_DIAGNOSES,
        max_diagnoses=MAX_DIAGNOSES,
        max_lines=MAX_LINES,
        previous=previous,
        may_ready=claim is None or ClaimState(claim.state) != ClaimState.REJECTED or may_resubmit(claim),
        practice_id=patient.practice.public_id,
    )


def may_resubmit(claim: Claim) -> bool:
    """Whether the user may "Save and mark ready" a rejected claim: the API's PUT, correct and ready."""
    needed = ["claims.update_claim", "claims.transition_ready"]
    if ClaimState(claim.state) == ClaimState.REJECTED:
        needed.append("claims.transition_correct")
    return all(may(endpoint) for endpoint in needed)


def _patient_of(session: Session, public_id: str | None, *, audit_read: bool) -> Patient:
    if not public_id or not PUBLIC_ID_PATTERN.match(public_id):
        raise NotFound("no patient has this id")
    return patients.get_patient(session, public_id, audit_read=audit_read)


# -- new claim ---------------------------------------------------------------------------------


@bp.route("/claims/new", methods=["GET"], endpoint="charge_new")
@timed
@mutation()  # commits the explicit patient.read audit event
def charge_new() -> Response:
    """The charge entry screen: find the patient first, or key the claim (``?copy=`` starts from one)."""
    session = db_session()
    patient_id = request.args.get("patient", "").strip()
    copy_id = request.args.get("copy", "").strip()
    source = None
    if copy_id:
        if not PUBLIC_ID_PATTERN.match(copy_id):
            raise NotFound("no claim has this id")
        source = get_claim(session, copy_id)
        patient_id = patient_id or source.patient.public_id
    if not patient_id:
        return page("charge_patient.html", errors={}, form={}, results=None)
    patient = _patient_of(session, patient_id, audit_read=True)
    if source is not None and source.patient_id != patient.id:
        raise Unprocessable(
            "the claim to copy is another patient's",
            errors=[{"field": "copy", "message": "Start from one of this patient's claims."}],
        )
    if source is None:
        form = new_form(patient, patients.list_coverages(session, patient), list(patient.practice.providers))
    else:
        doc = ClaimOutSchema().dump(claim_to_json(source))
        form = form_of_claim(doc, copy_dos=office_today(), fees=fee_lookup(session, patient.practice_id))
        form.patient_control_number = new_patient_control_number()
    return render_screen(session, patient, form)


@bp.route("/claims/new/patient", methods=["POST"], endpoint="charge_patient_search")
@timed
@mutation()
def charge_patient_search() -> Response:
    """Find the patient of the new claim (the patient search of the API, in the body); one match opens the screen."""
    form = {k: (request.form.get(k) or "").strip() for k in SEARCH_FIELDS}
    try:
        criteria = PatientSearchSchema().load({k: v for k, v in form.items() if v})
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in flatten_errors(exc.messages):
            errors.setdefault(error["field"] or "_form", error["message"])
        return page("charge_patient.html", 422, errors=errors, form=form, results=None)
    found = patients.search_patients(db_session(), criteria)
    if len(found) == 1:
        return redirect(url_for("ui.charge_new", patient=found[0].public_id), 303)
    return page("charge_patient.html", errors={}, form=form, results=found)


def _after_save(claim: Claim, findings: list[dict[str, Any]], ready: bool) -> Response:
    found = counts(findings)
    if ClaimState(claim.state) == ClaimState.READY:
        flash(f"Claim {claim.patient_control_number} is ready: it goes out with the next batch.", "success")
        return redirect(url_for("ui.claim", claim_id=claim.public_id), 303)
    said = f"the scrubber found {found['errors']} error(s) and {found['warnings']} warning(s), shown beside their fields."
    if ready:
        flash(f"Saved as {claim.state.value}, not ready: {said}", "error")
    else:
        flash(
            f"Saved as {claim.state.value}" + (f"; {said}" if found["errors"] or found["warnings"] else "."),
            "success",
        )
    return redirect(url_for("ui.charge_edit", claim_id=claim.public_id), 303)


@bp.route("/claims/new", methods=["POST"], endpoint="charge_create")
@timed
@mutation()
def charge_create() -> Response:
    """Save the keyed claim (``intent=ready``: and mark it ready when the scrub is clean)."""
    session = db_session()
    form = read_form(request.form)
    patient = _patient_of(session, form.patient, audit_read=False)
    if request.form.get("op"):  # a line button without JavaScript: the form comes back, nothing saved
        apply_op(form, request.form["op"])
        return render_screen(session, patient, form)
    form = form.renumbered()  # the page is drawn again with lines 0..n-1: errors must name those
    ready = request.form.get("intent") == "ready"
    if form.patient_control_number:
        # The form's claim control number makes a second submit (double click, Back) a no-op.
        existing = session.scalar(
            select(Claim).where(Claim.patient_control_number == form.patient_control_number.upper())
        )
        if existing is not None and existing.patient_id == patient.id:
            flash(
                "This claim was already saved (the form was sent twice); nothing was saved again.", "success"
            )
            return redirect(url_for("ui.claim", claim_id=existing.public_id), 303)
    fees = fee_lookup(session, patient.practice_id)
    doc, errors, total = claim_document(form, fees, ready=ready)
    try:
        data = load_claim_json(doc)
        if errors:
            raise Unprocessable("the claim has invalid fields", errors=[])
        result = create_claim(session, data)
    except ApiError as exc:
        session.rollback()
        found = {**errors_by_field(exc, form), **errors} if exc.errors else errors
        return render_screen(session, patient, form, errors=found, status=422, total_cents=total)
    return _after_save(result.claim, result.findings, ready)


# -- editing a draft, ready or rejected claim ----------------------------------------------------


def _editable(claim: Claim) -> None:
    if ClaimState(claim.state) not in state.EDITABLE_STATES:
        allowed = ", ".join(sorted(s.value for s in state.EDITABLE_STATES))
        raise Conflict(
            f"claim {claim.patient_control_number} is {claim.state.value}: its charges cannot change "
            f"(editable: {allowed})"
        )


@bp.route("/claims/<claim_id>/charges", methods=["GET"], endpoint="charge_edit")
@timed
def charge_edit(claim_id: str) -> Response:
    """The charge entry screen for a draft, ready or rejected claim, with its last scrub's findings."""
    session = db_session()
    claim = get_claim(session, claim_id)
    _editable(claim)
    form = form_of_claim(ClaimOutSchema().dump(claim_to_json(claim)))
    return render_screen(session, claim.patient, form, claim=claim, findings=list(claim.scrub_findings or []))


@bp.route("/claims/<claim_id>/charges", methods=["POST"], endpoint="charge_update")
@timed
@mutation()
def charge_update(claim_id: str) -> Response:
    """Save the charges (``intent=ready``: and make it ready; a rejected claim is corrected and resubmitted)."""
    session = db_session()
    claim = get_claim(session, claim_id)
    _editable(claim)
    form = read_form(request.form)
    form.patient = claim.patient.public_id  # a claim's patient never changes
    if request.form.get("op"):
        apply_op(form, request.form["op"])
        return render_screen(session, claim.patient, form, claim=claim)
    form = form.renumbered()
    ready = request.form.get("intent") == "ready"
    rejected = ClaimState(claim.state) == ClaimState.REJECTED
    if ready and rejected and not may_resubmit(claim):
        return refuse("your role may not correct and resubmit this claim; ask a billing supervisor")
    stored = ClaimOutSchema().dump(claim_to_json(claim))
    fees = fee_lookup(session, claim.practice_id)
    doc, errors, total = claim_document(form, fees, stored=stored, ready=ready)
    try:
        data = load_claim_json(doc)
        if errors:
            raise Unprocessable("the claim has invalid fields", errors=[])
    except ApiError as exc:
        found = {**errors_by_field(exc, form), **errors} if exc.errors else errors
        return render_screen(
            session, claim.patient, form, claim=claim, errors=found, status=422, total_cents=total
        )
    try:
        if ready and rejected:
            try:
                corrections.resubmit_corrected(session, claim, data)
                return _after_save(claim, list(claim.scrub_findings or []), ready)
            except Unprocessable:
                # Refused (scrub errors, most likely): keep the biller's changes, still rejected;
                # a refusal of the data itself is raised again by the update and shown below.
                session.rollback()
                claim = get_claim(session, claim_id)
                data = {**data, "ready": False}
        result = update_claim(session, claim, data)
    except ApiError as exc:
        session.rollback()
        claim = get_claim(session, claim_id)
        return render_screen(
            session,
            claim.patient,
            form,
            claim=claim,
            errors=errors_by_field(exc, form),
            status=exc.status,
            total_cents=total,
        )
    return _after_save(result.claim, result.findings, ready)


# -- as the biller types -----------------------------------------------------------------------


@bp.route("/claims/check", methods=["POST"], endpoint="charge_check")
@timed
def charge_check() -> Response:
    """Check the form as typed (the validate service: nothing is saved): JSON for charges.js."""
    session = db_session()
    form = read_form(request.form)
    try:
        patient = _patient_of(session, form.patient, audit_read=False)
        claim_id = (request.form.get("claim") or "").strip()
        stored = None
        if claim_id:
            claim = get_claim(session, claim_id) if PUBLIC_ID_PATTERN.match(claim_id) else None
            if claim is None or claim.patient_id != patient.id:
                raise NotFound("no claim has this id")
            stored = ClaimOutSchema().dump(claim_to_json(claim))
            stored.pop("patient_control_number", None)
        fees = fee_lookup(session, patient.practice_id)
        doc, errors, total = claim_document(form, fees, stored=stored)
        doc.pop("version", None)
        findings: list[dict[str, Any]] = []
        try:
            data = load_claim_json(doc)
            if not errors:
                findings = validate_claim(session, data)["findings"]
        except ApiError as exc:
            errors = {**errors_by_field(exc, form), **errors}
        findings.extend(pointer_findings(form))
        hints = hints_for(form, fees, fee_labels(session, patient.practice_id), total)
    finally:
        session.rollback()
    return jsonify(
        errors=errors,
        findings=findings_by_field(findings, form),
        counts=counts(findings),
        descriptions=hints.descriptions,
        fees=hints.fees,
        fee_texts=hints.fee_texts,
        total=money(total),
    )


@bp.route("/codes/<kind>", methods=["GET"], endpoint="code_lookup")
@timed
def code_lookup(kind: str) -> Response:
    """Code suggestions: ``kind`` diagnoses or procedures, ``q`` a code prefix or words, ``dos``
    the date of service (ICD-10-CM release, HCPCS validity), ``practice`` (procedures: its fee
    schedule's codes and labels first)."""
    if kind not in ("diagnoses", "procedures"):
        raise NotFound("no such code list")
    query = (request.args.get("q") or "")[:80]
    dos = _date_or_none(request.args.get("dos") or "")
    raw_limit = request.args.get("limit") or ""
    limit = int(raw_limit) if raw_limit.isdigit() and len(raw_limit) <= 3 else 12
    if len(query.strip()) < 1:
        return jsonify(items=[])
    if kind == "diagnoses":
        release = lookup.diagnosis_release(dos)
        items = [
            {"code": m.code, "description": m.description, "system": m.system}
            for m in lookup.search_diagnoses(query, dos, limit=limit)
        ]
        return jsonify(items=items, release=f"ICD-10-CM FY{release.fiscal_year}")
    items = [
        {"code": m.code, "description": m.description, "system": m.system, "fee": None}
        for m in lookup.search_procedures(query, dos, limit=limit)
    ]
    practice_id = (request.args.get("practice") or "").strip()
    if practice_id and PUBLIC_ID_PATTERN.match(practice_id):
        items = _with_fee_schedule(db_session(), practice_id, query, items, limit)
    return jsonify(items=items)


def _with_fee_schedule(
    session: Session, practice_public_id: str, query: str, items: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Procedure suggestions with the practice's fee (and label, where no description is known);
    the schedule's own codes that match the query come first."""
    practice = session.scalar(select(Practice).where(Practice.public_id == practice_public_id))
    if practice is None:
        return items
    entries = [e for e in list_fees(session, practice.id) if not e.modifier]
    by_code = {e.procedure_code: e for e in entries}
    code = query.strip().upper()
    words = lookup.words_of(query)
    matches = [
        e
        for e in entries
        if e.procedure_code.startswith(code)
        or (words and all(any(w.startswith(q) for w in lookup.words_of(e.description or "")) for q in words))
    ]
    out = [
        {
            "code": e.procedure_code,
            "description": next(
                (i["description"] for i in items if i["code"] == e.procedure_code and i["description"]), None
            )
            or e.description,
            "system": "fee schedule",
            "fee": cents_to_money(e.charge_cents),
        }
        for e in matches[:limit]
    ]
    seen = {i["code"] for i in out}
    for item in items:
        if item["code"] not in seen:
            entry = by_code.get(item["code"])
            out.append({**item, "fee": cents_to_money(entry.charge_cents) if entry else None})
    return out[:limit]
