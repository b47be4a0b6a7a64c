"""Charge import: a charge CSV (``claims.charge_csv``) becomes claims, all or nothing, once per file.

``import_charges(session, stream, ...)`` reads the file, groups its rows into claim JSON
documents and takes every one through the claim's own rules: ``ClaimInSchema`` loads
it (``api_common.fast_load``: its own fields and hooks, less machinery),
``claim_values`` makes of it what ``apply_claim_data`` would set (patient, coverage,
providers resolved from rows loaded once instead of one query each), put into a transient
claim that only COPY stores, ``scrub_claims`` scrubs them all with the payer's rules and
the coverages' eligibility answers (docs/charge-import.md, "How it is fast"). Then:

- any refused row (a column the schema refuses, an unknown patient or provider, a
  charge neither in the file nor in the fee schedule, a claim_ref already used, or a
  scrub error on a code or date the file itself carries: :data:`REFUSING_RULES`) refuses
  the whole file with every row, column and rule (:class:`ChargeFileRefused`); nothing
  is written;
- otherwise the claims are stored in the caller's transaction with one ``ChargeImport``
  row (the file's SHA-256, unique per practice): ``ready`` when the file asks for it
  (the default) and the scrub found no error, else ``draft`` with their findings;
- the same bytes again answer ``duplicate`` and create nothing; ``dry_run`` answers the
  per-row preview and writes nothing but its audit event.

Every claim gets the audit events ``create_claim`` writes (``claim.create``, ``claim.ready``,
the diagnoses' PHI create events), written in bulk; the import itself is
``charge_import.create``. Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, BinaryIO

from marshmallow import ValidationError
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claims_server.api_common.fast_load import FastLoader
from claims_server.api_common.fields import cents_to_money
from claims_server.api_common.pagination import Page, paginate
from claims_server.api_common.transactions import principal_key
from claims_server.claims import state
from claims_server.claims.charge_csv import (
    ChargeFileRefused,
    ClaimRows,
    CsvRow,
    ErrorList,
    group_rows,
    parse_charge_file,
    read_capped,
    split_list,
)
from claims_server.claims.schemas import ClaimInSchema, IcdCode
from claims_server.claims.scrub import scrub_claims, to_json_findings
from claims_server.claims.services import (
    READY_AT_CREATION,
    ClaimReferences,
    ClaimValues,
    check_provider,
    choose_coverage,
    claim_created_event,
    claim_values,
    flatten_errors,
)
from claims_server.db import bulk_insert
from claims_server.errors import ApiError, Conflict, NotFound
from claims_server.models import (
    AuditAction,
    ChargeImport,
    Claim,
    ClaimDiagnosis,
    ClaimState,
    Coverage,
    Patient,
    Payer,
    Practice,
    Provider,
    ServiceLine,
)
from claims_server.models.common import new_public_id, utcnow
from claims_server.models.encrypted import encrypted_attributes
from claims_server.practice.fee_schedule import (
    FeeLookup,
    default_charge_cents,
    fee_lookup,
    practice_for,
    units_of,
)
from claims_server.security.audit import audit_events_bulk
from claims_server.security.fields import account_number_index, cipher_for, normalize_text
from claims_server.security.ownership import find_owned, scope_query
from claims_server.security.principal import PrincipalKind, current_principal
from coding import icd10cm

#: Scrub rules whose error is about a code or date the file itself carries (an unknown or
#: non-billable diagnosis, an unknown procedure or modifier, a place of service that is no
#: CMS code, a date in the future or before birth): the export is wrong, so the row is
#: refused. Any other scrub error (the practice's or patient's records, eligibility, timely
#: filing, NCCI pairs...) imports the claim as draft with its findings, to be worked.
REFUSING_RULES = frozenset({"DX_VALID", "LINE_PROCEDURE", "LINE_MODIFIER", "CLAIM_POS", "DATE_OF_SERVICE"})
#: Rows of the per-row preview kept in an answer (the counts cover every row).
PREVIEW_ROWS = 1000
#: Ids per IN list (well below SQLite's and PostgreSQL's parameter limits).
_CHUNK = 1000
#: A well-formed public id standing in for a patient that could not be found, so the rest of the
#: claim is still checked by the schema (the claim is refused for the patient anyway).
_NO_PATIENT = "0" * 32

_schema = ClaimInSchema()
_icd = IcdCode()
_DIAGNOSIS_CODE = next(a for a in encrypted_attributes(inspect(ClaimDiagnosis)) if a.key == "code")
#: The details of a diagnosis's PHI create event (one mapping shared by all of them).
_DIAGNOSIS_FIELDS: dict[str, Any] = {"fields": ["code"]}


@dataclass
class ChargeImportReport:
    """What an import did (``imported``), would do (``dry_run``) or did before (``duplicate``)."""

    status: str
    sha256: str
    size_bytes: int
    rows: int = 0
    claims: int = 0
    lines: int = 0
    ready: int = 0
    draft: int = 0
    total_charge_cents: int = 0
    charges_from_fee_schedule: int = 0
    warnings: int = 0
    import_id: str | None = None
    claim_ids: list[str] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    preview_omitted: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "import_id": self.import_id,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "rows": self.rows,
            "claims": self.claims,
            "lines": self.lines,
            "ready": self.ready,
            "draft": self.draft,
            "total_charge": cents_to_money(self.total_charge_cents),
            "charges_from_fee_schedule": self.charges_from_fee_schedule,
            "warnings": self.warnings,
            "claim_ids": list(self.claim_ids),
            "preview": self.preview,
            "preview_omitted": self.preview_omitted,
        }


# -- the practice and what the file names -------------------------------------------------------


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class _Preloaded(ClaimReferences):
    """The references of every claim in the file, loaded once (same rules as the default)."""

    def __init__(
        self,
        session: Session,
        patients: Mapping[str, Patient],
        coverages: Mapping[int, list[Coverage]],
        providers: Mapping[str, Provider],
    ) -> None:
        super().__init__(session)
        self._patients = patients
        self._coverages = coverages
        self._providers = providers

    def patient(self, public_id: str) -> Patient:
        found = self._patients.get(public_id)
        return found if found is not None else super().patient(public_id)

    def coverage(self, patient: Patient, public_id: str | None, first_dos: date) -> Coverage:
        return choose_coverage(self._coverages.get(patient.id, []), patient, public_id, first_dos)

    def provider(self, practice_id: int, ref: str | None, field: str) -> Provider | None:
        return None if ref is None else check_provider(self._providers.get(ref), field)


@dataclass
class _Context:
    """Rows loaded once for the whole file."""

    practice: Practice
    by_account: dict[str, Patient]
    by_public_id: dict[str, Patient]
    refs: _Preloaded
    fees: FeeLookup
    used_pcns: set[str]


def _load_context(session: Session, practice: Practice, groups: list[ClaimRows]) -> _Context:
    principal = current_principal()
    cipher = cipher_for(session)
    accounts = {row.get("patient_account") for g in groups for row in g.rows} - {None}
    index_of = {account: account_number_index(cipher, account) for account in accounts if account}
    by_index: dict[str, Patient] = {}
    for chunk in _chunks(sorted(set(index_of.values()))):
        query = select(Patient).where(
            Patient.practice_id == practice.id, Patient.account_number_index.in_(chunk)
        )
        for patient in session.scalars(scope_query(query, principal, Patient)):
            by_index[patient.account_number_index or ""] = patient
    by_account = {account: by_index[digest] for account, digest in index_of.items() if digest in by_index}
    wanted_ids = sorted({row.get("patient_id") for g in groups for row in g.rows} - {None})  # type: ignore[type-var]
    by_public_id: dict[str, Patient] = {}
    for chunk in _chunks(wanted_ids):
        query = select(Patient).where(Patient.practice_id == practice.id, Patient.public_id.in_(chunk))
        for patient in session.scalars(scope_query(query, principal, Patient)):
            by_public_id[patient.public_id] = patient
    patients = {p.public_id: p for p in [*by_account.values(), *by_public_id.values()]}
    session.scalars(select(Payer)).all()  # coverages find their payer in the identity map
    coverages: dict[int, list[Coverage]] = {}
    for chunk in _chunks(sorted(p.id for p in patients.values())):
        for coverage in session.scalars(select(Coverage).where(Coverage.patient_id.in_(chunk))):
            coverages.setdefault(coverage.patient_id, []).append(coverage)
    providers: dict[str, Provider] = {}
    for provider in session.scalars(select(Provider).where(Provider.practice_id == practice.id)):
        providers[provider.npi] = provider
        providers[provider.public_id] = provider
    refs = sorted(g.claim_ref for g in groups)
    used: set[str] = set()
    for chunk in _chunks(refs):
        used.update(
            session.scalars(
                select(Claim.patient_control_number).where(Claim.patient_control_number.in_(chunk))
            )
        )
    return _Context(
        practice,
        by_account,
        by_public_id,
        _Preloaded(session, patients, coverages, providers),
        fee_lookup(session, practice.id),
        used,
    )


# -- rows → claim documents ---------------------------------------------------------------------


def _patient_of(group: ClaimRows, ctx: _Context, errors: ErrorList) -> Patient | None:
    first = group.first
    account, public_id = first.get("patient_account"), first.get("patient_id")
    by_account = ctx.by_account.get(account) if account else None
    by_id = ctx.by_public_id.get(public_id) if public_id else None
    if account is None and public_id is None:
        errors.add(first.line, "patient_account", "required", "is empty; give patient_account or patient_id")
        return None
    if account is not None and by_account is None:
        errors.add(
            first.line, "patient_account", "exists", "no patient of the practice has this account number"
        )
        return None
    if public_id is not None and by_id is None:
        group.patient_column = "patient_id"
        errors.add(first.line, "patient_id", "exists", "no patient of the practice has this id")
        return None
    if by_account is not None and by_id is not None and by_account is not by_id:
        errors.add(first.line, "patient_id", "same_patient", "names another patient than patient_account")
        return None
    patient = by_account or by_id
    if public_id is not None and account is None:
        group.patient_column = "patient_id"
    name = first.get("patient_name")
    if patient is not None and name is not None and not _same_name(name, patient):
        errors.add(first.line, "patient_name", "matches", "does not match the name of the patient found")
        return None
    return patient


def _same_name(text: str, patient: Patient) -> bool:
    """``"LAST, FIRST"`` (or ``"LAST"``) names ``patient`` (case, spaces and Unicode forms folded)."""
    last, _, first = text.partition(",")
    if normalize_text(last) != normalize_text(patient.last_name or ""):
        return False
    return not first.strip() or normalize_text(first) == normalize_text(patient.first_name or "")


def _fee_charge(row: CsvRow, ctx: _Context, errors: ErrorList) -> str | None:
    """The fee schedule's charge for a row without one (a decimal string), or None.

    As in charge entry (``ui.charges``), the schedule's fee is per unit: the charge is fee
    times units (``default_charge_cents``); anesthesia minutes (MJ) are never priced from it.
    """
    procedure = (row.get("procedure") or "").upper()
    modifiers = [m.upper() for m in split_list(row.get("modifiers"))]
    fee = ctx.fees(procedure, modifiers) if procedure else None
    units = units_of(row.get("units"))
    cents = default_charge_cents(fee, units, row.get("unit_basis"))
    if cents is None:
        code = "-".join([procedure, *modifiers]) if procedure else "the line"
        if fee is None:
            problem = f"is empty and the practice's fee schedule has no charge for {code}"
        elif units is None:
            problem = "is empty and units is not a number: the fee schedule's charge is per unit"
        else:
            problem = "is empty: anesthesia minutes (unit_basis MJ) are not priced from the fee schedule"
        errors.add(row.line, "charge", "fee_schedule", problem)
        return None
    return cents_to_money(cents)


def _document(group: ClaimRows, ctx: _Context, errors: ErrorList) -> tuple[dict[str, Any], set[int]]:
    """The claim JSON document of ``group`` (and the lines whose charge is the fee schedule's)."""
    first = group.first
    patient = _patient_of(group, ctx, errors)
    doc: dict[str, Any] = {
        "patient": patient.public_id if patient is not None else _NO_PATIENT,
        "patient_control_number": group.claim_ref,
        "ready": first.get("ready") or True,
    }
    for key, column in (
        ("coverage", "coverage_id"),
        ("referring_provider", "referring_npi"),
        ("facility_provider", "facility_npi"),
        ("prior_authorization", "prior_authorization"),
        ("place_of_service", "place_of_service"),
        ("rendering_provider", "rendering_npi"),
    ):
        if first.get(column) is not None:
            doc[key] = first.get(column)
    codes: list[str] = []
    lines: list[dict[str, Any]] = []
    from_fees: set[int] = set()
    for index, row in enumerate(group.rows):
        pointers: list[int] = []
        for code in split_list(row.get("diagnoses")):
            try:
                normalized = _icd.deserialize(code)
            except ValidationError as exc:
                errors.add(row.line, "diagnoses", "icd", _first_message(exc.messages))
                continue
            if normalized not in codes:
                codes.append(normalized)
                group.diagnosis_rows.append(row.line)
            pointers.append(codes.index(normalized) + 1)
        if not row.get("diagnoses"):
            errors.add(row.line, "diagnoses", "required", "is empty; every line points at 1-4 diagnoses")
        line: dict[str, Any] = {"modifiers": split_list(row.get("modifiers")), "diagnosis_pointers": pointers}
        for key, column in (
            ("procedure", "procedure"),
            ("service_date", "service_date"),
            ("service_date_end", "service_date_end"),
            ("description", "description"),
            ("units", "units"),
            ("unit_basis", "unit_basis"),
            ("charge", "charge"),
            ("ndc", "ndc"),
            ("drug_quantity", "ndc_quantity"),
            ("drug_unit", "ndc_unit"),
        ):
            if row.get(column) is not None:
                line[key] = row.get(column)
        # The first row's place of service and rendering provider are the claim's (CLM05-1,
        # 2310B); a later row names its own only where it differs (SV105, 2420A).
        for key, column in (
            ("place_of_service", "place_of_service"),
            ("rendering_provider", "rendering_npi"),
        ):
            if row.get(column) is not None and row.get(column) != first.get(column):
                line[key] = row.get(column)
        if "charge" not in line:
            charge = _fee_charge(row, ctx, errors)
            if charge is not None:
                line["charge"] = charge
                from_fees.add(index)
        lines.append(line)
    doc["diagnoses"] = codes
    doc["lines"] = lines
    return doc, from_fees


def _first_message(messages: Any) -> str:
    while isinstance(messages, dict | list) and messages:
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return str(messages)


def _report(group: ClaimRows, errors: ErrorList, problems: Iterable[Mapping[str, Any]], rule: str) -> None:
    """Each problem (``{"field": claim JSON path, "message", "rule"?}``) at its line and column."""
    for problem in problems:
        line, column = group.where(problem.get("field"))
        errors.add(line, column, str(problem.get("rule") or rule), str(problem.get("message")))


# -- the import -----------------------------------------------------------------------------------


@dataclass
class _Built:
    group: ClaimRows
    claim: Claim
    from_fees: set[int]
    ready: bool
    findings: list[dict[str, Any]] = field(default_factory=list)


def import_charges(
    session: Session,
    stream: BinaryIO,
    *,
    max_bytes: int,
    practice: str | None = None,
    dry_run: bool = False,
    today: date | None = None,
) -> ChargeImportReport:
    """Import the charge CSV read from ``stream`` (binary) for ``practice`` (public id; default the only one).

    Raises :class:`~claims_server.claims.charge_csv.ChargeFileTooLarge` (413) as soon as
    the file passes ``max_bytes``, and :class:`ChargeFileRefused` (422, every row, column
    and rule) when anything in it is refused; nothing is written then.
    """
    # As the batcher does (submission.services): an import keeps every claim it builds alive
    # until it ends, tens of objects per line and none of them garbage, so the cyclic
    # collector's passes over them are pure cost; it runs again afterwards.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _import(session, stream, max_bytes=max_bytes, practice=practice, dry_run=dry_run, today=today)
    finally:
        if collecting:
            gc.enable()


@cache
def _unset(model: type[Any]) -> dict[str, None]:
    """None for each column and many-to-one attribute of ``model`` (never modified)."""
    mapper = inspect(model)
    return dict.fromkeys(
        [attribute.key for attribute in mapper.column_attrs]
        + [relation.key for relation in mapper.relationships if not relation.uselist]
    )


def _transient(model: type[Any], values: Mapping[str, Any]) -> Any:
    """A transient ``model`` instance holding ``values``, every other column and many-to-one None.

    What ``apply_claim_data`` would set, put straight into the instance dict: the import's
    claims are never flushed by the ORM (``_insert_claims`` stores them from their instance
    dicts with COPY), so the attribute events, history and backrefs that a flush needs are
    pure cost here, tens of them per claim. Reads (the scrub's ``build_edi_claim``, the
    preview) see the same values; ``state.transition`` still sets ``state`` as on any claim.
    """
    obj = model.__mapper__.class_manager.new_instance()
    state = obj.__dict__
    state.update(_unset(model))
    state.update(values)
    return obj


def _transient_claim(values: ClaimValues, patient_control_number: str, now: datetime) -> Claim:
    """The claim ``claim_values`` describes (draft, new public id), with its diagnoses and lines."""
    claim: Claim = _transient(
        Claim,
        {
            "public_id": new_public_id(),
            "patient_control_number": patient_control_number,
            "state": ClaimState.DRAFT,
            "state_changed_at": now,
            **values.claim,
        },
    )
    claim.__dict__["diagnoses"] = [_transient(ClaimDiagnosis, item) for item in values.diagnoses]
    claim.__dict__["service_lines"] = [_transient(ServiceLine, item) for item in values.lines]
    return claim


def _import(
    session: Session,
    stream: BinaryIO,
    *,
    max_bytes: int,
    practice: str | None,
    dry_run: bool,
    today: date | None,
) -> ChargeImportReport:
    target = practice_for(session, practice)
    content, sha256 = read_capped(stream, max_bytes)
    previous = _previous_import(session, target.id, sha256)
    if previous is not None:
        return _duplicate(session, previous, len(content))
    parsed = parse_charge_file(content, sha256)
    del content
    errors = parsed.errors
    groups = group_rows(parsed.rows, errors)
    ctx = _load_context(session, target, groups)
    now = utcnow()
    built: list[_Built] = []
    # ClaimInSchema's own fields and hooks, without marshmallow's per-document machinery; a
    # document with any problem is loaded by the schema itself, for its own messages.
    loader = FastLoader(_schema, pure=(IcdCode,))
    for group in groups:
        before = errors.total
        if group.claim_ref in ctx.used_pcns:
            errors.add(
                group.first.line,
                "claim_ref",
                "already_imported",
                "a claim with this claim_ref (CLM01) exists already: the claim was imported before",
            )
        document, from_fees = _document(group, ctx, errors)
        try:
            data = loader.load(document)
        except ValidationError as exc:
            _report(group, errors, flatten_errors(exc.messages), "invalid")
            continue
        if errors.total > before:
            continue
        try:
            with session.no_autoflush:
                values = claim_values(data, ctx.refs, patient_control_number=data["patient_control_number"])
        except ApiError as exc:
            _report(group, errors, exc.errors or [{"field": None, "message": exc.detail}], "invalid")
            continue
        claim = _transient_claim(values, data["patient_control_number"], now)
        built.append(_Built(group, claim, from_fees, data["ready"]))
    for item, findings in zip(
        built, scrub_claims(session, [b.claim for b in built], today=today), strict=True
    ):
        item.findings = to_json_findings(findings)
        _report(
            item.group,
            errors,
            (
                {"field": f["path"], "rule": f["rule_id"], "message": f["message"]}
                for f in item.findings
                if f["severity"] == "error" and f["rule_id"] in REFUSING_RULES
            ),
            "scrub",
        )
    if errors:
        items = sorted(errors.items, key=lambda e: (e.line or 0, e.column or ""))
        raise ChargeFileRefused(
            f"the charge file was not imported: {errors.total} problem(s) in its rows; nothing was imported",
            items,
            total=errors.total,
        )
    return _store(session, target, parsed.sha256, parsed.size, len(parsed.rows), built, now, dry_run)


def _store(
    session: Session,
    practice: Practice,
    sha256: str,
    size: int,
    rows: int,
    built: list[_Built],
    now: Any,
    dry_run: bool,
) -> ChargeImportReport:
    events: list[dict[str, Any]] = []
    for item in built:
        claim = item.claim
        claim.scrub_findings = item.findings
        claim.scrubbed_at = now
        events.append(claim_created_event(claim))
        if item.ready and not any(f["severity"] == "error" for f in item.findings):
            state.transition(session, claim, "ready", reason=READY_AT_CREATION, now=now, audit_events=events)
    report = ChargeImportReport(
        status="dry_run" if dry_run else "imported",
        sha256=sha256,
        size_bytes=size,
        rows=rows,
        claims=len(built),
        lines=sum(len(b.claim.service_lines) for b in built),
        ready=sum(1 for b in built if b.claim.state == ClaimState.READY),
        total_charge_cents=sum(b.claim.total_charge_cents for b in built),
        charges_from_fee_schedule=sum(len(b.from_fees) for b in built),
        warnings=sum(1 for b in built for f in b.findings if f["severity"] == "warning"),
    )
    report.draft = report.claims - report.ready
    if dry_run:
        report.preview, report.preview_omitted = _preview(built)
        audit_events_bulk(
            session, [_import_event(None, report, AuditAction.EXECUTE, "charge_import.dry_run")]
        )
        return report
    record = ChargeImport(
        practice_id=practice.id,
        file_sha256=sha256,
        created_by=principal_key(),
        row_count=rows,
        claim_count=report.claims,
        ready_count=report.ready,
        line_count=report.lines,
        total_charge_cents=report.total_charge_cents,
        summary={
            "states": {"ready": report.ready, "draft": report.draft},
            "charges_from_fee_schedule": report.charges_from_fee_schedule,
            "warnings": report.warnings,
            "size_bytes": size,
        },
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        # The same file imported by a concurrent request that committed first.
        previous = _previous_import(session, practice.id, sha256)
        if previous is None:
            raise Conflict("the same file was imported at the same moment; nothing was imported") from None
        return _duplicate(session, previous, size)
    _insert_claims(session, [b.claim for b in built], record.id, events)
    report.import_id = record.public_id
    report.claim_ids = [b.claim.public_id for b in built]
    events.append(_import_event(record.public_id, report, AuditAction.CREATE, "charge_import.create"))
    audit_events_bulk(session, events)
    return report


@cache
def _insert_plan(model: type[Any]) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, Any], ...]]:
    """(column, attribute) for every column of ``model``'s table but ``id``, and (column, default)
    for those with a Python default (a scalar, or a zero-argument callable SQLAlchemy wraps)."""
    mapper = inspect(model)
    columns = [column for column in mapper.local_table.columns if column.key != "id"]
    return (
        tuple((column.key, mapper.get_property_by_column(column).key) for column in columns),
        tuple((column.key, column.default) for column in columns if column.default is not None),
    )


def _column_values(obj: Any, **values: Any) -> dict[str, Any]:
    """The INSERT row of a transient ORM object: every column but ``id``, the column's default where
    the object has no value (what the ORM's INSERT would send)."""
    state = obj.__dict__
    attributes, defaults = _insert_plan(type(obj))
    row = {column: state.get(attribute) for column, attribute in attributes}
    row.update(values)
    for column, default in defaults:
        if row[column] is None:
            row[column] = default.arg(None) if default.is_callable else default.arg
    return row


def _without_empty_columns(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without (in place) the columns that are None in every row: NULL either way, and COPY
    sends less."""
    if not rows:
        return rows
    empty = [key for key in rows[0] if all(row[key] is None for row in rows)]
    for row in rows:
        for key in empty:
            del row[key]
    return rows


def _insert_claims(
    session: Session, claims: list[Claim], import_id: int, events: list[dict[str, Any]]
) -> None:
    """Store the claims built by ``_transient_claim`` with three bulk INSERTs (COPY on PostgreSQL).

    A flush of tens of thousands of ORM objects spends most of its time in the unit of work
    and, on PostgreSQL, in psycopg re-parsing each long multi-row INSERT (``db.bulk_insert``).
    What the flush would add is done here: the diagnosis codes are sealed like any encrypted
    column (bound to the row's public id), the integration owner is stamped
    (``security.ownership``), and each diagnosis gets its PHI ``claim_diagnoses.create`` event.
    """
    principal = current_principal()
    owner = principal.integration_name if principal.kind is PrincipalKind.TOKEN else None
    cipher = cipher_for(session)
    claim_ids = bulk_insert(
        session,
        Claim.__table__,
        _without_empty_columns(
            [_column_values(c, charge_import_id=import_id, owner_integration=owner) for c in claims]
        ),
        returning_ids=True,
    )
    line_rows: list[dict[str, Any]] = []
    diagnosis_rows: list[dict[str, Any]] = []
    for claim, claim_id in zip(claims, claim_ids, strict=True):
        line_rows.extend(_column_values(line, claim_id=claim_id) for line in claim.service_lines)
        for diagnosis in claim.diagnoses:
            public_id = new_public_id()
            diagnosis_rows.append(
                _column_values(
                    diagnosis,
                    claim_id=claim_id,
                    public_id=public_id,
                    code=cipher.seal(_DIAGNOSIS_CODE, public_id, diagnosis.code),
                )
            )
            events.append(
                {
                    "action": AuditAction.CREATE,
                    "event_type": "claim_diagnoses.create",
                    "entity_type": "claim_diagnoses",
                    "entity_id": public_id,
                    "patient_id": claim.patient_id,
                    "details": _DIAGNOSIS_FIELDS,
                }
            )
    bulk_insert(session, ServiceLine.__table__, _without_empty_columns(line_rows))
    bulk_insert(session, ClaimDiagnosis.__table__, diagnosis_rows)


def _import_event(
    public_id: str | None, report: ChargeImportReport, action: AuditAction, event_type: str
) -> dict[str, Any]:
    return {
        "action": action,
        "event_type": event_type,
        "entity_type": "charge_import",
        "entity_id": public_id,
        "details": {
            "sha256": report.sha256,
            "rows": report.rows,
            "claims": report.claims,
            "lines": report.lines,
            "ready": report.ready,
            "total_charge_cents": report.total_charge_cents,
        },
    }


def _previous_import(session: Session, practice_id: int, sha256: str) -> ChargeImport | None:
    """The import of these bytes the caller may see. Another integration's import of the same
    file stays invisible: its file is then checked like any other (and refused, its patients
    and claim_refs being someone else's), never answered with that import's ids."""
    query = select(ChargeImport).where(
        ChargeImport.practice_id == practice_id, ChargeImport.file_sha256 == sha256
    )
    return session.scalar(scope_query(query, current_principal(), ChargeImport))


def _duplicate(session: Session, previous: ChargeImport, size: int) -> ChargeImportReport:
    claim_ids = session.scalars(
        select(Claim.public_id).where(Claim.charge_import_id == previous.id).order_by(Claim.id)
    ).all()
    return ChargeImportReport(
        status="duplicate",
        sha256=previous.file_sha256,
        size_bytes=size,
        rows=previous.row_count,
        claims=previous.claim_count,
        lines=previous.line_count,
        ready=previous.ready_count,
        draft=previous.claim_count - previous.ready_count,
        total_charge_cents=previous.total_charge_cents,
        import_id=previous.public_id,
        claim_ids=list(claim_ids),
    )


def _preview(built: list[_Built]) -> tuple[list[dict[str, Any]], int]:
    """One entry per row (at most :data:`PREVIEW_ROWS`): the line it becomes and the findings about it."""
    rows: list[dict[str, Any]] = []
    total = 0
    for item in built:
        claim, group = item.claim, item.group
        at_line: dict[int, list[dict[str, Any]]] = {}
        for finding in item.findings:
            line, column = group.where(finding["path"])
            at_line.setdefault(line, []).append(
                {
                    "rule_id": finding["rule_id"],
                    "severity": finding["severity"],
                    "message": finding["message"],
                    "column": column,
                    "source": finding["source"],
                }
            )
        for index, (row, line) in enumerate(zip(group.rows, claim.service_lines, strict=True)):
            total += 1
            if len(rows) >= PREVIEW_ROWS:
                continue
            rows.append(
                {
                    "line": row.line,
                    "claim_ref": claim.patient_control_number,
                    "line_number": line.line_number,
                    "service_date": line.service_date_from.isoformat(),
                    "procedure": line.procedure_code,
                    "modifiers": line.modifiers,
                    "units": line.units,
                    "charge": cents_to_money(line.charge_cents),
                    "charge_from_fee_schedule": index in item.from_fees,
                    "diagnoses": [
                        icd10cm.with_dot(claim.diagnoses[p - 1].code) for p in line.pointer_positions
                    ],
                    "claim_state": claim.state.value,
                    "findings": at_line.get(row.line, []),
                }
            )
    return rows, total - len(rows)


# -- reading imports ------------------------------------------------------------------------------


def list_charge_imports(session: Session, *, limit: int, cursor: str | None) -> Page[ChargeImport]:
    """Charge imports the caller may see, newest first."""
    query = scope_query(select(ChargeImport), current_principal(), ChargeImport)
    return paginate(session, query, ChargeImport.id, limit=limit, cursor=cursor, filters={}, descending=True)


def get_charge_import(session: Session, public_id: str) -> ChargeImport:
    found = find_owned(session, ChargeImport, public_id)
    if found is None:
        raise NotFound("no charge import has this id")
    return found


def charge_import_to_json(
    session: Session, record: ChargeImport, *, with_claims: bool = True
) -> dict[str, Any]:
    """The import's counts and totals, its claims' states now, and (``with_claims``) the claims."""
    summary = dict(record.summary or {})
    out: dict[str, Any] = {
        "id": record.public_id,
        "sha256": record.file_sha256,
        "created_at": record.created_at,
        "created_by": record.created_by,
        "rows": record.row_count,
        "claims": record.claim_count,
        "lines": record.line_count,
        "ready": record.ready_count,
        "draft": record.claim_count - record.ready_count,
        "total_charge": cents_to_money(record.total_charge_cents),
        "charges_from_fee_schedule": int(summary.get("charges_from_fee_schedule") or 0),
        "warnings": int(summary.get("warnings") or 0),
        "states_now": {},
    }
    states = session.execute(
        select(Claim.state, func.count()).where(Claim.charge_import_id == record.id).group_by(Claim.state)
    ).all()
    out["states_now"] = {ClaimState(s).value: n for s, n in sorted(states, key=lambda r: str(r[0]))}
    if with_claims:
        out["created_claims"] = [
            {
                "id": public_id,
                "patient_control_number": pcn,
                "state": ClaimState(claim_state).value,
                "total_charge": cents_to_money(total),
            }
            for public_id, pcn, claim_state, total in session.execute(
                select(Claim.public_id, Claim.patient_control_number, Claim.state, Claim.total_charge_cents)
                .where(Claim.charge_import_id == record.id)
                .order_by(Claim.id)
            )
        ]
    return out


__all__ = [
    "REFUSING_RULES",
    "ChargeFileRefused",
    "ChargeImportReport",
    "charge_import_to_json",
    "get_charge_import",
    "import_charges",
    "list_charge_imports",
]
