"""Claim ↔ our claim (837P loop 2300/2400), and 277CA statuses → ClaimResponse.

Inbound, a Claim becomes the claims API's JSON (``claims.services.load_claim_json``)
and is stored by ``create_claim``: the same schema, references and scrubber as a claim
posted to ``/api/v1/claims``. ``ClaimPaths`` remembers which FHIR element each claim
JSON field came from, so schema errors and scrubber findings come back as
OperationOutcome issues whose ``expression`` is that element's FHIRPath.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.api_common.fields import cents_to_money
from claims_server.claims import services as claim_services
from claims_server.claims.to_edi import claim_load_options
from claims_server.errors import ApiError
from claims_server.fhir import search
from claims_server.fhir.common import (
    CLAIM_STATUS_SYSTEM,
    CLAIM_TYPE_SYSTEM,
    CPT_SYSTEM,
    HCPCS_SYSTEM,
    ICD10CM_SYSTEM,
    NPI_SYSTEM,
    PAYER_CLAIM_SYSTEM,
    PCN_SYSTEM,
    POS_SYSTEM,
    PROCESS_PRIORITY_SYSTEM,
    apply_date,
    cents_of,
    concept,
    day,
    identifier,
    instant,
    money,
    parse_date_param,
    parse_token,
    prune,
    reference,
    reference_id,
)
from claims_server.fhir.outcome import FhirError, Issue
from claims_server.fhir.patients import (
    ID_PARAM,
    PATIENT_PARAM,
    id_filter,
    patient_filter,
    payer_ref,
    practice_ref,
)
from claims_server.models import Claim, ClaimKind, ClaimState, ClaimStatusEvent, EdiFile, Provider

CARE_TEAM_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
RELATED_CLAIM_SYSTEM = "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship"
_HCPCS = re.compile(r"^[A-V][0-9]{4}$")
_STATUS = {ClaimState.DRAFT: "draft", ClaimState.VOIDED: "cancelled"}


def icd_with_dot(code: str) -> str:
    """ICD-10-CM as FHIR writes it (``E119`` → ``E11.9``); we store it without the dot (HI)."""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def procedure_concept(code: str) -> dict[str, Any] | None:
    return concept(HCPCS_SYSTEM if _HCPCS.match(code) else CPT_SYSTEM, code)


def provider_ref(provider: Provider) -> dict[str, Any]:
    return {"identifier": identifier(NPI_SYSTEM, provider.npi), "display": provider.last_name}


# -- outbound ---------------------------------------------------------------------------------------


def claim_to_fhir(claim: Claim) -> dict[str, Any]:
    lines = list(claim.service_lines)
    dates = [d for line in lines for d in (line.service_date_from, line.service_date_to) if d]
    care_team = []
    if claim.rendering_provider is not None:
        care_team.append(
            {
                "sequence": 1,
                "provider": provider_ref(claim.rendering_provider),
                "role": concept(CARE_TEAM_ROLE_SYSTEM, "primary"),
            }
        )
    return prune(
        {
            "resourceType": "Claim",
            "id": claim.public_id,
            "meta": {"lastUpdated": instant(claim.updated_at), "versionId": str(claim.version)},
            "identifier": [
                identifier(PCN_SYSTEM, claim.patient_control_number),
                identifier(PAYER_CLAIM_SYSTEM, claim.payer_claim_control_number),
            ],
            "status": _STATUS.get(claim.state, "active"),
            "type": concept(CLAIM_TYPE_SYSTEM, claim.claim_kind.value),
            "use": "claim",
            "patient": reference("Patient", claim.patient.public_id),
            "billablePeriod": {"start": day(min(dates)), "end": day(max(dates))} if dates else None,
            "created": instant(claim.created_at),
            "insurer": payer_ref(claim.coverage.payer),
            "provider": practice_ref(claim.practice),
            "priority": concept(PROCESS_PRIORITY_SYSTEM, "normal"),
            "related": [
                {
                    "claim": reference("Claim", claim.original_claim.public_id),
                    "relationship": concept(RELATED_CLAIM_SYSTEM, "prior"),
                }
            ]
            if claim.original_claim is not None
            else None,
            "careTeam": care_team,
            "diagnosis": [
                {
                    "sequence": dx.position,
                    "diagnosisCodeableConcept": concept(ICD10CM_SYSTEM, icd_with_dot(dx.code)),
                }
                for dx in claim.diagnoses
            ],
            "insurance": [
                {
                    "sequence": 1,
                    "focal": True,
                    "coverage": reference("Coverage", claim.coverage.public_id),
                    "preAuthRef": [claim.prior_authorization] if claim.prior_authorization else None,
                }
            ],
            "item": [
                {
                    "sequence": line.line_number,
                    "careTeamSequence": [1] if care_team else None,
                    "diagnosisSequence": line.pointer_positions,
                    "productOrService": procedure_concept(line.procedure_code),
                    "modifier": [concept(CPT_SYSTEM, m) for m in line.modifiers],
                    "servicedDate": day(line.service_date_from) if line.service_date_to is None else None,
                    "servicedPeriod": {"start": day(line.service_date_from), "end": day(line.service_date_to)}
                    if line.service_date_to is not None
                    else None,
                    "locationCodeableConcept": concept(
                        POS_SYSTEM, line.place_of_service or claim.place_of_service
                    ),
                    "quantity": {"value": line.unit_count},
                    "net": money(line.charge_cents),
                }
                for line in lines
            ],
            "total": money(claim.total_charge_cents),
        }
    )


def read_claim(session: Session, public_id: str) -> dict[str, Any]:
    claim = session.scalar(select(Claim).where(Claim.public_id == public_id).options(*claim_load_options()))
    if claim is None:
        raise search.not_found("Claim")
    return claim_to_fhir(claim)


def identifier_filter(columns: dict[str, Any]) -> search.Handler:
    """``identifier=[system|]value`` over the columns keyed by our identifier systems."""

    def handler(query: Any, raw: str) -> Any:
        system, value = parse_token("identifier", raw)
        if system is not None and system not in columns:
            raise FhirError(
                400,
                [
                    Issue(
                        f"identifier: supported systems are {', '.join(sorted(columns))}",
                        "value",
                        "identifier",
                    )
                ],
            )
        wanted = [columns[system]] if system else list(columns.values())
        from sqlalchemy import or_

        return query.where(or_(*(column == value for column in wanted)))

    return handler


def date_filter(column: Any, name: str, *, as_date: bool = False) -> search.Handler:
    return lambda query, raw: apply_date(query, column, parse_date_param(name, raw), as_date=as_date)


CREATED_PARAM = search.SearchParam("created", "date", "when the record was created (eq, ge, le, gt, lt)")
CLAIM_IDENTIFIER_PARAM = search.SearchParam(
    "identifier",
    "token",
    f"patient control number ({PCN_SYSTEM}) or payer claim number ({PAYER_CLAIM_SYSTEM})",
)


def search_claims(session: Session, args: search.SearchArgs) -> tuple[list[dict[str, Any]], str | None]:
    handlers = {
        "_id": id_filter(Claim.public_id),
        "patient": patient_filter(Claim.patient_id),
        "created": date_filter(Claim.created_at, "created"),
        "identifier": identifier_filter(
            {PCN_SYSTEM: Claim.patient_control_number, PAYER_CLAIM_SYSTEM: Claim.payer_claim_control_number}
        ),
    }
    query = search.apply(select(Claim).options(*claim_load_options()), args, handlers)
    found = search.page(session, query, Claim.id, args)
    return [claim_to_fhir(c) for c in found.items], found.next_cursor


CLAIM = search.ResourceKind(
    "Claim",
    read_claim,
    search_claims,
    (ID_PARAM, PATIENT_PARAM, CREATED_PARAM, CLAIM_IDENTIFIER_PARAM),
    create=True,
)


# -- 277CA -> ClaimResponse -------------------------------------------------------------------------

ACK_PREFIX = "ack-"


def ack_id(edi_file: EdiFile, claim: Claim) -> str:
    """``ack-<277CA file id>-<CLM01>``: one ClaimResponse per claim per 277CA (ids of ids, no PHI)."""
    return f"{ACK_PREFIX}{edi_file.public_id}-{claim.patient_control_number}"


def ack_to_fhir(events: list[ClaimStatusEvent]) -> dict[str, Any]:
    """The statuses of one claim in one 277CA as a ClaimResponse (A3/A6/A7/A8 rejected → error)."""
    first = events[0]
    claim, edi_file = first.claim, first.edi_file
    assert claim is not None
    rejected = any(e.category_code in ("A3", "A6", "A7", "A8") for e in events)
    return prune(
        {
            "resourceType": "ClaimResponse",
            "id": ack_id(edi_file, claim),
            "identifier": [
                identifier(PCN_SYSTEM, claim.patient_control_number),
                identifier(PAYER_CLAIM_SYSTEM, first.payer_claim_control_number),
            ],
            "status": "active",
            "type": concept(CLAIM_TYPE_SYSTEM, claim.claim_kind.value),
            "use": "claim",
            "patient": reference("Patient", claim.patient.public_id),
            "created": instant(first.created_at),
            "insurer": payer_ref(claim.coverage.payer),
            "request": reference("Claim", claim.public_id),
            # 277CA is the payer's front-end answer: accepted claims wait for adjudication.
            "outcome": "error" if rejected else "queued",
            "disposition": "; ".join(e.free_text for e in events if e.free_text)[:1000] or None,
            "error": [
                {"code": concept(CLAIM_STATUS_SYSTEM, f"{e.category_code}:{e.status_code}", e.free_text)}
                for e in events
                if e.category_code in ("A3", "A6", "A7", "A8")
            ],
            "processNote": [
                {"number": i, "type": "display", "text": f"{e.category_code}:{e.status_code}"}
                for i, e in enumerate(events, start=1)
            ],
        }
    )


def _ack_events(session: Session, edi_file_id: int, claim_id: int) -> list[ClaimStatusEvent]:
    return list(
        session.scalars(
            select(ClaimStatusEvent)
            .where(ClaimStatusEvent.edi_file_id == edi_file_id, ClaimStatusEvent.claim_id == claim_id)
            .order_by(ClaimStatusEvent.id)
        )
    )


def read_ack(session: Session, response_id: str) -> dict[str, Any]:
    file_id, _, pcn = response_id.removeprefix(ACK_PREFIX).partition("-")
    row = session.execute(
        select(EdiFile.id, Claim.id)
        .join(ClaimStatusEvent, ClaimStatusEvent.edi_file_id == EdiFile.id)
        .join(Claim, Claim.id == ClaimStatusEvent.claim_id)
        .where(EdiFile.public_id == file_id, Claim.patient_control_number == pcn)
        .limit(1)
    ).first()
    if row is None:
        raise search.not_found("ClaimResponse")
    return ack_to_fhir(_ack_events(session, row[0], row[1]))


def ack_groups(query_filter: Callable[[Any], Any], after: int | None, limit: int) -> Any:
    """(first event id, file id, claim id) of each claim's statuses in a 277CA, in id order."""
    query = (
        select(func.min(ClaimStatusEvent.id), ClaimStatusEvent.edi_file_id, ClaimStatusEvent.claim_id)
        .join(Claim, Claim.id == ClaimStatusEvent.claim_id)
        .group_by(ClaimStatusEvent.edi_file_id, ClaimStatusEvent.claim_id)
    )
    query = query_filter(query)
    if after is not None:
        query = query.having(func.min(ClaimStatusEvent.id) > after)
    return query.order_by(func.min(ClaimStatusEvent.id)).limit(limit)


# -- inbound ----------------------------------------------------------------------------------------


@dataclass
class ClaimPaths:
    """Claim JSON field -> FHIRPath of the element it was read from."""

    prefix: str
    paths: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, element: str) -> None:
        self.paths[name] = f"{self.prefix}.{element}"

    def of(self, name: str | None) -> str:
        """The FHIRPath of a claim JSON path, or of its nearest mapped parent, else the Claim."""
        text = name or ""
        while text:
            if text in self.paths:
                return self.paths[text]
            cut = max(text.rfind("."), text.rfind("["))
            text = text[:cut] if cut > 0 else ""
        return self.prefix


def _coded(node: Any, systems: tuple[str, ...]) -> str | None:
    for item in (node or {}).get("coding") or []:
        if item.get("system") in systems and item.get("code"):
            return str(item["code"])
    return None


def _provider_value(provider: Any) -> str | None:
    """careTeam.provider: an NPI identifier, or Practitioner/<our provider id>."""
    ident = (provider or {}).get("identifier") or {}
    if ident.get("system") == NPI_SYSTEM and ident.get("value"):
        return str(ident["value"])
    ref = (provider or {}).get("reference") or ""
    return ref.removeprefix("Practitioner/") if ref.startswith("Practitioner/") else None


def claim_json_from_fhir(
    resource: dict[str, Any], resolve: Callable[[Any], Any], prefix: str = "Claim"
) -> tuple[dict[str, Any], ClaimPaths]:
    """The claims API JSON for a validated Claim, with where each field came from."""
    paths = ClaimPaths(prefix)
    issues: list[Issue] = []
    kind = _coded(resource.get("type"), (CLAIM_TYPE_SYSTEM,))
    if kind != ClaimKind.PROFESSIONAL.value:
        issues.append(
            Issue("only professional claims (837P) are accepted over FHIR", "not-supported", f"{prefix}.type")
        )
    if resource.get("use") != "claim":
        issues.append(
            Issue("only use = claim is accepted (no pre-authorizations)", "not-supported", f"{prefix}.use")
        )
    doc: dict[str, Any] = {"claim_kind": "professional", "ready": resource.get("status") == "active"}
    try:
        doc["patient"] = reference_id(resolve(resource.get("patient")), "Patient", f"{prefix}.patient")
        paths.set("patient", "patient")
    except FhirError as exc:
        issues += exc.issues
    insurance = resource.get("insurance") or []
    focal = next((i for i, ins in enumerate(insurance) if ins.get("focal")), 0)
    if insurance:
        try:
            doc["coverage"] = reference_id(
                resolve(insurance[focal].get("coverage")), "Coverage", f"{prefix}.insurance[{focal}].coverage"
            )
            paths.set("coverage", f"insurance[{focal}].coverage")
        except FhirError as exc:
            issues += exc.issues
        auth = insurance[focal].get("preAuthRef") or []
        if auth:
            doc["prior_authorization"] = auth[0]
            paths.set("prior_authorization", f"insurance[{focal}].preAuthRef[0]")
    for index, ident in enumerate(resource.get("identifier") or []):
        if ident.get("system") == PCN_SYSTEM and ident.get("value"):
            doc["patient_control_number"] = ident["value"]
            paths.set("patient_control_number", f"identifier[{index}]")
    team = resource.get("careTeam") or []
    team_index = {member.get("sequence"): i for i, member in enumerate(team)}
    primary = next(
        (i for i, m in enumerate(team) if _coded(m.get("role"), (CARE_TEAM_ROLE_SYSTEM,)) == "primary"),
        0 if team else None,
    )
    if primary is not None:
        value = _provider_value(team[primary].get("provider"))
        if value is None:
            issues.append(
                Issue(
                    f"the rendering provider needs an NPI identifier ({NPI_SYSTEM}) or Practitioner/<id>",
                    "required",
                    f"{prefix}.careTeam[{primary}].provider",
                )
            )
        else:
            doc["rendering_provider"] = value
            paths.set("rendering_provider", f"careTeam[{primary}].provider")
    diagnoses = sorted(
        enumerate(resource.get("diagnosis") or []), key=lambda pair: pair[1].get("sequence", 0)
    )
    pointer_of: dict[int, int] = {}
    doc["diagnoses"] = []
    paths.set("diagnoses", "diagnosis")
    for position, (index, dx) in enumerate(diagnoses, start=1):
        code = _coded(dx.get("diagnosisCodeableConcept"), (ICD10CM_SYSTEM,))
        expression = f"diagnosis[{index}].diagnosisCodeableConcept"
        if code is None:
            issues.append(
                Issue(
                    f"an ICD-10-CM code ({ICD10CM_SYSTEM}) is required", "required", f"{prefix}.{expression}"
                )
            )
            continue
        pointer_of[dx.get("sequence")] = position
        paths.set(f"diagnoses[{position - 1}]", expression)
        doc["diagnoses"].append(code)
    doc["lines"] = []
    paths.set("lines", "item")
    places = set()
    for index, item in enumerate(resource.get("item") or []):
        at = f"item[{index}]"
        line: dict[str, Any] = {}
        code = _coded(item.get("productOrService"), (CPT_SYSTEM, HCPCS_SYSTEM))
        if code is None:
            issues.append(
                Issue("a CPT or HCPCS code is required", "required", f"{prefix}.{at}.productOrService")
            )
        line["procedure"] = code
        paths.set(f"lines[{index}].procedure", f"{at}.productOrService")
        line["modifiers"] = [
            m for m in (_coded(x, (CPT_SYSTEM, HCPCS_SYSTEM)) for x in item.get("modifier") or []) if m
        ]
        paths.set(f"lines[{index}].modifiers", f"{at}.modifier")
        net = item.get("net") or {}
        if "value" not in net:
            issues.append(Issue("the line charge (net) is required", "required", f"{prefix}.{at}.net"))
        else:
            try:
                line["charge"] = cents_to_money(cents_of(net["value"], f"{prefix}.{at}.net"))
            except FhirError as exc:
                issues += exc.issues
        paths.set(f"lines[{index}].charge", f"{at}.net")
        quantity = (item.get("quantity") or {}).get("value")
        if quantity is not None:
            line["units"] = str(quantity)
        paths.set(f"lines[{index}].units", f"{at}.quantity")
        period = item.get("servicedPeriod") or {}
        if item.get("servicedDate"):
            line["service_date"] = item["servicedDate"]
            paths.set(f"lines[{index}].service_date", f"{at}.servicedDate")
        elif period.get("start"):
            line["service_date"] = period["start"]
            paths.set(f"lines[{index}].service_date", f"{at}.servicedPeriod.start")
            if period.get("end"):
                line["service_date_end"] = period["end"]
                paths.set(f"lines[{index}].service_date_end", f"{at}.servicedPeriod.end")
        else:
            issues.append(
                Issue("servicedDate or servicedPeriod is required", "required", f"{prefix}.{at}.servicedDate")
            )
        pointers = []
        for number, sequence in enumerate(item.get("diagnosisSequence") or []):
            if sequence not in pointer_of:
                issues.append(
                    Issue(
                        "does not point at a diagnosis of the claim",
                        "invalid",
                        f"{prefix}.{at}.diagnosisSequence[{number}]",
                    )
                )
            else:
                pointers.append(pointer_of[sequence])
        line["diagnosis_pointers"] = pointers
        paths.set(f"lines[{index}].diagnosis_pointers", f"{at}.diagnosisSequence")
        place = _coded(item.get("locationCodeableConcept"), (POS_SYSTEM,))
        if place:
            line["place_of_service"] = place
            places.add(place)
        paths.set(f"lines[{index}].place_of_service", f"{at}.locationCodeableConcept")
        care = item.get("careTeamSequence") or []
        if care and care[0] in team_index and team_index[care[0]] != primary:
            value = _provider_value(team[team_index[care[0]]].get("provider"))
            if value:
                line["rendering_provider"] = value
                paths.set(f"lines[{index}].rendering_provider", f"careTeam[{team_index[care[0]]}].provider")
        doc["lines"].append(line)
    if doc["lines"]:
        # CLM05-1: the claim's place of service is the first line's; lines repeat it only when they differ.
        doc["place_of_service"] = doc["lines"][0].get("place_of_service")
        paths.set("place_of_service", "item[0].locationCodeableConcept")
        for line in doc["lines"]:
            if line.get("place_of_service") == doc["place_of_service"]:
                line.pop("place_of_service", None)
    total = (resource.get("total") or {}).get("value")
    if total is not None and not issues:
        try:
            lines_total = sum(cents_of(i["net"]["value"], prefix) for i in resource.get("item") or [])
            if cents_of(total, f"{prefix}.total") != lines_total:
                issues.append(
                    Issue(
                        "total must equal the sum of the items' net (CLM02 = Σ SV102)",
                        "business-rule",
                        f"{prefix}.total",
                        rule="total_matches_lines",
                    )
                )
        except FhirError as exc:
            issues += exc.issues
    if issues:
        raise FhirError(422, issues)
    return {k: v for k, v in doc.items() if v is not None}, paths


def create_claim_from_fhir(
    session: Session, resource: dict[str, Any], resolve: Callable[[Any], Any], prefix: str = "Claim"
) -> Claim:
    """Store a Claim through the claims service; schema errors and scrub errors → 422 on FHIR elements."""
    doc, paths = claim_json_from_fhir(resource, resolve, prefix)
    try:
        result = claim_services.create_claim(session, claim_services.load_claim_json(doc))
    except ApiError as exc:
        issues = [
            Issue(
                str(err.get("message") or exc.detail),
                "conflict" if exc.status == 409 else "invalid",
                paths.of(err.get("field")),
                rule=err.get("rule"),
            )
            for err in exc.errors or [{"message": exc.detail}]
        ]
        raise FhirError(409 if exc.status == 409 else 422, issues) from None
    errors = [f for f in result.findings if f["severity"] == "error"]
    if errors:
        raise FhirError(
            422,
            [
                Issue(
                    f["message"], "business-rule", paths.of(f["path"]), rule=f["rule_id"], hint=f.get("hint")
                )
                for f in errors
            ],
        )
    return result.claim
