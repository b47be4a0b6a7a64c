"""The claim scrubber: edits a claim before it goes out, the way a payer's front end would.

Each rule is one small function registered with an id and a default severity
(``error`` blocks submission, ``warning`` advises, ``info`` tells). It receives a
:class:`ScrubContext` (the claim plus what every rule needs: dates, the patient's age
and sex, the code sets, the payer's rules) and yields :class:`Issue` objects naming the
claim field (``lines[2].modifiers[0]``, ``diagnoses[0]``), a message a billing
specialist understands, and a fix hint. :meth:`Scrubber.scrub` turns them into
:class:`ScrubFinding` objects and never raises on bad data: a rule that crashes becomes
an ``INTERNAL_ERROR`` finding naming the rule.

Messages name fields, codes and rules, never the patient's name, birth date or member
id (PHI stays out of findings, which end up in logs and work queues).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from coding import cpt, hcpcs, icd10cm, modifiers, reference
from coding.cpt import CptCodeSet
from coding.hcpcs import HcpcsCodeSet
from coding.icd10cm import Icd10Cm, Icd10CmRelease
from coding.ncci import AddOnTable, MueTable, PtpStore
from edi.claims import Claim, ClaimKind, Provider, ServiceLine
from edi.findings import Finding, Severity
from edi.identifiers import is_valid_ein, is_valid_npi, is_valid_zip

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
MAX_DIAGNOSES = 12  # 837P HI: up to 12 codes
MAX_LINES = 50  # 837P 2400 repeat
MAX_POINTERS = 4  # SV107-1..4
MAX_MODIFIERS = 4  # SV101-3..6
MAX_PCN_LENGTH = 20  # TR3 note on CLM01, tighter than the element's 38


@dataclass(frozen=True, slots=True)
class ScrubFinding:
    """One problem found on a claim: which rule, how bad, what, where, how to fix."""

    rule_id: str
    severity: Severity
    message: str
    path: str
    hint: str
    value: str | None = None

    @property
    def blocks_submission(self) -> bool:
        return self.severity is Severity.ERROR

    def to_finding(self) -> Finding:
        """The project-wide :class:`edi.findings.Finding` form (``element`` holds the path)."""
        return Finding(
            self.severity,
            self.rule_id,
            f"{self.message} Fix: {self.hint}",
            element=self.path,
            value=self.value,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "hint": self.hint,
            "value": self.value,
        }


@dataclass(frozen=True, slots=True)
class Issue:
    """What a rule yields; the runner adds the rule id and (unless overridden) its severity."""

    path: str
    message: str
    hint: str
    value: str | None = None
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class PayerRules:
    """Per-payer switches. The defaults suit a commercial payer with a one-year filing limit."""

    require_taxonomy: bool = False  # PRV*BI on the billing provider (e.g. Medicaid, group billing)
    require_referring_provider: bool = False  # 2310A for specialist visits (HMO plans)
    require_prior_authorization: bool = False  # REF*G1
    require_frequency_code: bool = True  # CLM05-3 must be 1, 7 or 8
    accepts_replacement_claims: bool = True  # Medicare Part B corrects through reopenings
    timely_filing_days: int | None = 365  # Medicare: 365 days from the DOS
    disabled_rules: frozenset[str] = frozenset()
    ptp_enabled: bool = True
    mue_enabled: bool = True


@dataclass(slots=True)
class CodeSets:
    """The data the scrubber checks against. ``cpt``, ``ptp`` and ``mue`` are optional."""

    icd10cm: Icd10Cm
    hcpcs: HcpcsCodeSet
    cpt: CptCodeSet | None = None
    ptp: PtpStore | None = None
    mue: MueTable | None = None
    add_ons: AddOnTable = field(default_factory=AddOnTable)

    @classmethod
    def default(cls) -> CodeSets:
        """The shipped ICD-10-CM and HCPCS, plus any licensed CPT file installed with ``cpt.use``."""
        return cls(icd10cm.default(), hcpcs.default(), cpt.licensed())


@dataclass(frozen=True, slots=True)
class EligibilityFacts:
    """The last 270/271 check for the claim's coverage, as the eligibility rules need it.

    Built by ``eligibility.scrub_facts`` (the scrubber does not import ``eligibility``:
    that package builds on this one). ``member_id`` is what the payer answered with: PHI,
    compared but never put into a message.
    """

    status: str  # active / inactive / not_found / rejected / error
    payer_id: str  # the payer asked (2100A NM109)
    checked_on: date | None = None
    coverage_start: date | None = None
    coverage_end: date | None = None
    member_id: str = ""
    other_payer_primary: bool = False
    other_payers: tuple[str, ...] = ()  # names of the other payers the 271 named


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


class ScrubContext:
    """The claim and everything rules share, computed once per scrub."""

    def __init__(
        self,
        claim: Claim,
        code_sets: CodeSets,
        rules: PayerRules,
        today: date,
        *,
        eligibility: EligibilityFacts | None = None,
    ) -> None:
        self.claim = claim
        self.eligibility = eligibility
        self.code_sets = code_sets
        self.rules = rules
        self.today = today
        person = claim.patient if claim.patient is not None else claim.subscriber
        self.person_path = "patient" if claim.patient is not None else "subscriber"
        self.professional = claim.kind is not ClaimKind.INSTITUTIONAL
        self.birth_date: date | None = getattr(person, "birth_date", None)
        self.sex: str | None = getattr(person, "sex", None)
        self.line_dates: list[date | None] = [
            line.service_date if isinstance(line.service_date, date) else None for line in claim.lines
        ]
        known = [d for d in self.line_dates if d is not None]
        self.first_dos: date | None = min(known) if known else None
        self.service_dates: list[date] = sorted(set(known))
        self.dx_codes: list[str] = [
            icd10cm.normalize(dx.code) if isinstance(dx.code, str) else "" for dx in claim.diagnoses
        ]
        self.procedures: list[str] = [
            line.procedure.strip().upper() if isinstance(line.procedure, str) else "" for line in claim.lines
        ]

    def icd_release(self, dos: date) -> Icd10CmRelease | None:
        return self.code_sets.icd10cm.release_for(dos)

    def age(self, day: date | None = None) -> int | None:
        day = day or self.first_dos
        if self.birth_date is None or day is None:
            return None
        return _age_on(self.birth_date, day)


RuleFunction = Callable[[ScrubContext], Iterable[Issue]]


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    severity: Severity
    check: RuleFunction
    summary: str


RULES: list[Rule] = []


def rule(rule_id: str, severity: Severity) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under an id with its default severity."""

    def register(function: RuleFunction) -> RuleFunction:
        summary = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else rule_id
        RULES.append(Rule(rule_id, severity, function, summary))
        return function

    return register


def _procedure_kind(code: str) -> str:
    """'hcpcs' for Level II, 'cpt' for anything in a CPT shape, else 'unknown'."""
    if hcpcs.LEVEL2_CODE.match(code):
        return "hcpcs"
    if cpt.category(code) is not None:
        return "cpt"
    return "unknown"


# -- claim header -------------------------------------------------------------------------


@rule("CLAIM_PCN", ERROR)
def check_patient_control_number(ctx: ScrubContext) -> Iterator[Issue]:
    """CLM01 patient control number present and at most 20 characters."""
    pcn = ctx.claim.patient_control_number
    if not isinstance(pcn, str) or not pcn.strip():
        yield Issue(
            "patient_control_number",
            "The patient control number (CLM01) is missing.",
            "Give the claim a unique account number of up to 20 characters.",
        )
    elif len(pcn) > MAX_PCN_LENGTH:
        yield Issue(
            "patient_control_number",
            f"The patient control number is {len(pcn)} characters; the 837P allows 20.",
            "Shorten it to 20 characters or fewer (17 is safest: some payers truncate).",
            pcn,
        )


@rule("CLAIM_TOTAL", ERROR)
def check_total_charge(ctx: ScrubContext) -> Iterator[Issue]:
    """The claim total (CLM02) equals the sum of the line charges."""
    total = ctx.claim.total_charge_cents
    charges = [line.charge_cents for line in ctx.claim.lines]
    if not all(isinstance(c, int) for c in charges):
        return  # LINE_UNITS_CHARGE reports the unreadable line charge
    lines_total = sum(charges)
    if total != lines_total:
        yield Issue(
            "total_charge_cents",
            f"The claim total ({_money(total)}) does not equal the sum of the line charges "
            f"({_money(lines_total)}).",
            "Correct the total or the line charges so that they balance.",
            str(total),
        )


def _money(cents: object) -> str:
    if not isinstance(cents, int):
        return "missing"
    return f"${Decimal(cents).scaleb(-2):,.2f}"


@rule("CLAIM_LINES", ERROR)
def check_line_count(ctx: ScrubContext) -> Iterator[Issue]:
    """At least one and at most 50 service lines."""
    count = len(ctx.claim.lines)
    if count == 0:
        yield Issue("lines", "The claim has no service lines.", "Add the services provided.")
    elif count > MAX_LINES:
        yield Issue(
            "lines",
            f"The claim has {count} service lines; the 837P allows 50.",
            "Split the services across two claims.",
            str(count),
        )


@rule("CLAIM_FREQUENCY", ERROR)
def check_frequency(ctx: ScrubContext) -> Iterator[Issue]:
    """Claim frequency code (CLM05-3) is 1, 7 or 8; 7 and 8 carry the original claim number."""
    code = ctx.claim.frequency_code
    if not code and not ctx.rules.require_frequency_code:
        return
    if not reference.is_valid_frequency_code(str(code), professional=ctx.professional):
        yield Issue(
            "frequency_code",
            "The claim frequency code must be 1 (original), 7 (replacement) or 8 (void) on a professional claim."
            if ctx.professional
            else "The claim frequency code (third digit of the type of bill) is not a valid code.",
            "Set the frequency code.",
            str(code),
        )
        return
    if code in reference.FREQUENCY_NEEDS_ORIGINAL and not (ctx.claim.original_claim_number or "").strip():
        kind = "replacement" if code == "7" else "void"
        yield Issue(
            "original_claim_number",
            f"A {kind} claim (frequency {code}) must carry the payer's original claim number.",
            "Enter the payer claim control number from the 835 or 277CA (REF*F8).",
        )
    if code in reference.FREQUENCY_NEEDS_ORIGINAL and not ctx.rules.accepts_replacement_claims:
        yield Issue(
            "frequency_code",
            "This payer does not take replacement or void claims.",
            "Request a reopening or correction through the payer's portal instead.",
            code,
            WARNING,
        )


@rule("CLAIM_POS", ERROR)
def check_place_of_service(ctx: ScrubContext) -> Iterator[Issue]:
    """Place of service (claim and line) is a CMS code in force on the date of service."""
    if not ctx.professional:
        return  # on an 837I this field is the facility type code (type of bill), not a POS
    dos = ctx.first_dos
    if not reference.is_valid_place_of_service(ctx.claim.place_of_service or "", dos):
        yield Issue(
            "place_of_service",
            "The place of service is not a valid CMS two-digit code.",
            "Use the CMS place-of-service code for where the service was given (11 = office).",
            ctx.claim.place_of_service,
        )
    for i, line in enumerate(ctx.claim.lines):
        pos = line.place_of_service
        if pos and not reference.is_valid_place_of_service(pos, ctx.line_dates[i] or dos):
            yield Issue(
                f"lines[{i}].place_of_service",
                "The line's place of service is not a valid CMS code.",
                "Correct it, or leave it empty when it matches the claim's.",
                pos,
            )


@rule("CLAIM_RELATED_CAUSES", ERROR)
def check_related_causes(ctx: ScrubContext) -> Iterator[Issue]:
    """An auto accident (CLM11 AA) names the state and the accident date."""
    causes = ctx.claim.related_causes
    if "AA" in causes:
        if not reference.is_valid_state(ctx.claim.related_causes_state):
            yield Issue(
                "related_causes_state",
                "An auto-accident claim must name the state of the accident.",
                "Enter the two-letter state code (CLM11-4).",
            )
        if ctx.claim.accident_date is None:
            yield Issue(
                "accident_date",
                "An auto-accident claim needs the accident date.",
                "Enter the accident date (DTP*439).",
            )


@rule("PAYER_PRIOR_AUTH", ERROR)
def check_prior_authorization(ctx: ScrubContext) -> Iterator[Issue]:
    """The payer requires a prior authorization number."""
    if ctx.rules.require_prior_authorization and not (ctx.claim.prior_authorization or "").strip():
        yield Issue(
            "prior_authorization",
            "This payer requires a prior authorization number on the claim.",
            "Enter the authorization number from the payer's approval (REF*G1).",
        )


@rule("PAYER_REFERRING", ERROR)
def check_referring_required(ctx: ScrubContext) -> Iterator[Issue]:
    """The payer requires a referring provider."""
    if ctx.rules.require_referring_provider and (ctx.claim.referring is None or not ctx.claim.referring.npi):
        yield Issue(
            "referring",
            "This payer requires the referring provider on the claim.",
            "Add the referring provider's name and NPI (2310A).",
        )


@rule("PAYER_TAXONOMY", ERROR)
def check_taxonomy_required(ctx: ScrubContext) -> Iterator[Issue]:
    """The payer requires the billing provider's taxonomy code."""
    if ctx.rules.require_taxonomy and not ctx.claim.billing_provider.taxonomy:
        yield Issue(
            "billing_provider.taxonomy",
            "This payer requires the billing provider's taxonomy code.",
            "Add the NUCC taxonomy the provider is enrolled under (PRV*BI).",
        )


# -- providers and identifiers -------------------------------------------------------------


def _providers(claim: Claim) -> Iterator[tuple[str, Provider]]:
    for name in ("referring", "rendering", "supervising", "service_facility"):
        provider = getattr(claim, name)
        if provider is not None:
            yield name, provider
    for i, line in enumerate(claim.lines):
        if line.rendering is not None:
            yield f"lines[{i}].rendering", line.rendering


@rule("NPI_CHECK_DIGIT", ERROR)
def check_npis(ctx: ScrubContext) -> Iterator[Issue]:
    """Every NPI on the claim is 10 digits starting 1 or 2 with a valid check digit."""
    hint = "Copy the NPI from NPPES: 10 digits, and the last digit is a check digit (a typo breaks it)."
    npi = ctx.claim.billing_provider.npi
    if not is_valid_npi(npi):
        yield Issue("billing_provider.npi", "The billing provider's NPI is not a valid NPI.", hint, npi)
    for path, provider in _providers(ctx.claim):
        if provider.npi is None and path == "service_facility":
            continue
        if not is_valid_npi(provider.npi):
            yield Issue(
                f"{path}.npi",
                f"The {path.replace('_', ' ')} NPI is missing or not a valid NPI.",
                hint,
                provider.npi,
            )


@rule("TAXONOMY_FORMAT", ERROR)
def check_taxonomy_format(ctx: ScrubContext) -> Iterator[Issue]:
    """Taxonomy codes are 10 characters: nine letters or digits and a final X."""
    hint = "Use the 10-character NUCC taxonomy code, e.g. 207Q00000X."
    code = ctx.claim.billing_provider.taxonomy
    if code is not None and not reference.is_valid_taxonomy(code):
        yield Issue(
            "billing_provider.taxonomy", "The billing provider's taxonomy code is malformed.", hint, code
        )
    for path, provider in _providers(ctx.claim):
        if provider.taxonomy is not None and not reference.is_valid_taxonomy(provider.taxonomy):
            yield Issue(f"{path}.taxonomy", "A provider taxonomy code is malformed.", hint, provider.taxonomy)


@rule("BILLING_ADDRESS", ERROR)
def check_billing_address(ctx: ScrubContext) -> Iterator[Issue]:
    """Billing provider: a US state, a 9-digit ZIP, a valid EIN."""
    provider = ctx.claim.billing_provider
    address = provider.address
    if not reference.is_valid_state(address.state):
        yield Issue(
            "billing_provider.address.state",
            "The billing provider's state is not a US state code.",
            "Use the two-letter USPS code.",
            address.state,
        )
    if not is_valid_zip(address.zip_code, require_plus4=True):
        yield Issue(
            "billing_provider.address.zip_code",
            "The billing provider's ZIP code must have 9 digits (ZIP+4).",
            "Add the 4-digit extension, without a hyphen.",
            address.zip_code,
        )
    if provider.tax_id_qualifier == "EI" and not is_valid_ein(provider.tax_id):
        yield Issue(
            "billing_provider.tax_id",
            "The billing provider's EIN must be 9 digits without a hyphen.",
            "Enter the EIN as 9 digits.",
        )
    facility = ctx.claim.service_facility
    if facility is not None and facility.address is not None:
        if not is_valid_zip(facility.address.zip_code, require_plus4=True):
            yield Issue(
                "service_facility.address.zip_code",
                "The service facility's ZIP code must have 9 digits (ZIP+4).",
                "Add the 4-digit extension.",
                facility.address.zip_code,
            )
        if not reference.is_valid_state(facility.address.state):
            yield Issue(
                "service_facility.address.state",
                "The service facility's state is not a US state code.",
                "Use the two-letter USPS code.",
                facility.address.state,
            )


@rule("PATIENT_ADDRESS", ERROR)
def check_patient_address(ctx: ScrubContext) -> Iterator[Issue]:
    """Patient/subscriber address: a US state and a 5- or 9-digit ZIP (values never echoed)."""
    person = ctx.claim.patient if ctx.claim.patient is not None else ctx.claim.subscriber
    address = person.address
    if address is None or address.country:
        return
    if not reference.is_valid_state(address.state):
        yield Issue(
            f"{ctx.person_path}.address.state",
            "The patient's state is not a US state code.",
            "Use the two-letter USPS code.",
        )
    if not is_valid_zip(address.zip_code):
        yield Issue(
            f"{ctx.person_path}.address.zip_code",
            "The patient's ZIP code must be 5 or 9 digits.",
            "Correct the ZIP code, without a hyphen.",
        )


# -- dates --------------------------------------------------------------------------------


@rule("DATE_OF_SERVICE", ERROR)
def check_service_dates(ctx: ScrubContext) -> Iterator[Issue]:
    """Every line has a service date, not in the future, not before birth, end not before start."""
    for i, line in enumerate(ctx.claim.lines):
        dos = ctx.line_dates[i]
        if dos is None:
            yield Issue(
                f"lines[{i}].service_date",
                "The service line has no date of service.",
                "Enter the date the service was given (DTP*472).",
            )
            continue
        if dos > ctx.today:
            yield Issue(
                f"lines[{i}].service_date",
                "The date of service is in the future.",
                "Bill only after the service is given; check the date for a typo.",
            )
        if ctx.birth_date is not None and dos < ctx.birth_date:
            yield Issue(
                f"lines[{i}].service_date",
                "The date of service is before the patient's birth date.",
                "Check the date of service and the patient's birth date.",
            )
        end = line.service_date_end
        if end is not None and end < dos:
            yield Issue(
                f"lines[{i}].service_date_end",
                "The service end date is before the start date.",
                "Correct the date range.",
            )
        elif end is not None and end > ctx.today:
            yield Issue(
                f"lines[{i}].service_date_end",
                "The service end date is in the future.",
                "Bill the span only after it ends.",
            )


@rule("TIMELY_FILING", ERROR)
def check_timely_filing(ctx: ScrubContext) -> Iterator[Issue]:
    """The claim is within the payer's timely filing limit, counted from the earliest DOS."""
    limit = ctx.rules.timely_filing_days
    if limit is None or ctx.first_dos is None or ctx.first_dos > ctx.today:
        return
    age = (ctx.today - ctx.first_dos).days
    if age > limit:
        yield Issue(
            "lines",
            f"The earliest service is {age} days old; this payer's filing limit is {limit} days.",
            "Send only with proof of timely filing (an earlier 999/277CA acceptance); "
            "otherwise write the balance off.",
            str(age),
        )
    elif age > limit - 30:
        yield Issue(
            "lines",
            f"The filing limit ({limit} days) is reached in {limit - age} days.",
            "Submit this claim now.",
            str(age),
            WARNING,
        )


# -- diagnoses ----------------------------------------------------------------------------


@rule("DX_COUNT", ERROR)
def check_diagnosis_count(ctx: ScrubContext) -> Iterator[Issue]:
    """One to twelve diagnoses, none repeated."""
    codes = ctx.dx_codes
    if not codes:
        yield Issue(
            "diagnoses", "The claim has no diagnosis.", "Add the diagnosis codes that support the services."
        )
        return
    if len(codes) > MAX_DIAGNOSES:
        yield Issue(
            "diagnoses",
            f"The claim has {len(codes)} diagnoses; the 837P allows 12.",
            "Keep the 12 most relevant, or split the claim.",
            str(len(codes)),
        )
    seen: dict[str, int] = {}
    for i, code in enumerate(codes):
        if code in seen:
            yield Issue(
                f"diagnoses[{i}]",
                f"Diagnosis {icd10cm.with_dot(code)} is listed twice.",
                f"Remove the duplicate and point the lines at diagnoses[{seen[code]}].",
                code,
            )
        else:
            seen[code] = i


def _dx_releases(ctx: ScrubContext) -> list[Icd10CmRelease]:
    releases: list[Icd10CmRelease] = []
    for dos in ctx.service_dates or ([ctx.today] if ctx.first_dos is None else []):
        release = ctx.icd_release(dos)
        if release is not None and release not in releases:
            releases.append(release)
    return releases


@rule("DX_RELEASE", WARNING)
def check_icd_release(ctx: ScrubContext) -> Iterator[Issue]:
    """An ICD-10-CM release is loaded for every date of service."""
    missing = [d for d in ctx.service_dates if ctx.icd_release(d) is None]
    if missing:
        latest = ctx.code_sets.icd10cm.latest
        yield Issue(
            "diagnoses",
            f"No ICD-10-CM release covering {len(missing)} date(s) of service is loaded; "
            f"diagnoses were checked against FY{latest.fiscal_year}.",
            "Load the ICD-10-CM release for that fiscal year.",
        )


@rule("DX_VALID", ERROR)
def check_diagnosis_valid(ctx: ScrubContext) -> Iterator[Issue]:
    """Each diagnosis exists in ICD-10-CM on the date of service and is billable (a leaf)."""
    releases = _dx_releases(ctx) or [ctx.code_sets.icd10cm.latest]
    for i, code in enumerate(ctx.dx_codes):
        for release in releases:
            if release.is_billable(code):
                continue
            printed = icd10cm.with_dot(code)
            if release.exists(code):
                yield Issue(
                    f"diagnoses[{i}]",
                    f"Diagnosis {printed} is a category header, not a billable code.",
                    "Code to the highest specificity: pick one of its subcodes.",
                    code,
                )
            else:
                yield Issue(
                    f"diagnoses[{i}]",
                    f"Diagnosis {printed or '(blank)'} is not a valid ICD-10-CM code for FY"
                    f"{release.fiscal_year}.",
                    "Check the code for a typo, or use the code valid on the date of service.",
                    code,
                )
            break


@rule("DX_EXTERNAL_CAUSE_PRINCIPAL", ERROR)
def check_external_cause_principal(ctx: ScrubContext) -> Iterator[Issue]:
    """An external-cause code (V00-Y99) is never the first (principal) diagnosis."""
    if ctx.dx_codes and ctx.dx_codes[0][:1] in ("V", "W", "X", "Y"):
        yield Issue(
            "diagnoses[0]",
            "An external-cause code (V00-Y99) cannot be the first diagnosis.",
            "List the injury or condition first and the external cause after it.",
            ctx.dx_codes[0],
        )


@rule("DX_EXCLUDES1", ERROR)
def check_excludes1(ctx: ScrubContext) -> Iterator[Issue]:
    """No two diagnoses that an Excludes1 note says are never coded together."""
    codes = ctx.dx_codes
    if len(codes) < 2:
        return
    releases = _dx_releases(ctx) or [ctx.code_sets.icd10cm.latest]
    release = releases[0]
    reported: set[tuple[str, str]] = set()
    for i, code in enumerate(codes):
        for j, other in enumerate(codes):
            if i == j or not code or not other or (other, code) in reported:
                continue
            conflict = release.excludes1_conflict(code, other)
            if conflict is not None:
                reported.add((code, other))
                yield Issue(
                    f"diagnoses[{j}]",
                    f"Diagnoses {icd10cm.with_dot(code)} and {icd10cm.with_dot(other)} conflict: "
                    f"an Excludes1 note says they are never coded together ({conflict.note}).",
                    "Keep the one the documentation supports; both only if the conditions are unrelated "
                    "(ICD-10-CM guideline I.A.12.a exception).",
                    other,
                )


@rule("DX_SEX", ERROR)
def check_diagnosis_sex(ctx: ScrubContext) -> Iterator[Issue]:
    """Sex-specific diagnoses (maternity, female/male genital blocks) match the patient's sex."""
    if ctx.sex not in ("F", "M"):
        return
    release = ctx.code_sets.icd10cm.latest if ctx.first_dos is None else ctx.icd_release(ctx.first_dos)
    release = release or ctx.code_sets.icd10cm.latest
    for i, code in enumerate(ctx.dx_codes):
        if code[:1] == "O" and ctx.sex == "M":
            source = "ICD-10-CM chapter 15, pregnancy, childbirth and the puerperium"
        else:
            restriction = release.sex_restriction(code)
            if restriction is None or restriction.sex == ctx.sex:
                continue
            source = restriction.source
        yield Issue(
            f"diagnoses[{i}]",
            f"Diagnosis {icd10cm.with_dot(code)} applies to the other sex than the patient's recorded "
            f"sex ({source}).",
            "Check the patient's recorded sex and the diagnosis.",
            code,
        )


@rule("DX_AGE", WARNING)
def check_diagnosis_age(ctx: ScrubContext) -> Iterator[Issue]:
    """Perinatal codes (P00-P96) for newborns (age 0); maternity codes (O00-O9A) for ages 12-55."""
    age = ctx.age()
    if age is None:
        return
    for i, code in enumerate(ctx.dx_codes):
        if code[:1] == "P" and age > 0:
            yield Issue(
                f"diagnoses[{i}]",
                f"Perinatal code {icd10cm.with_dot(code)} on a patient past the first year of life: payers expect these "
                "for newborns (ICD-10-CM chapter 16; CMS Medicare Code Editor newborn edit).",
                "Use it only for a condition that began in the perinatal period; else recode.",
                code,
            )
        elif code[:1] == "O" and not 12 <= age <= 55:
            yield Issue(
                f"diagnoses[{i}]",
                f"Maternity code {icd10cm.with_dot(code)} on a patient outside the ages 12-55 "
                "(CMS Medicare Code Editor maternity age edit).",
                "Check the patient's birth date and the diagnosis.",
                code,
            )


# -- service lines ------------------------------------------------------------------------


@rule("LINE_DX_POINTER", ERROR)
def check_diagnosis_pointers(ctx: ScrubContext) -> Iterator[Issue]:
    """Each line points at 1-4 existing diagnoses, without repeats."""
    count = len(ctx.dx_codes)
    if count == 0 or not ctx.professional:
        return  # DX_COUNT reports a claim without diagnoses; 837I lines carry no pointers
    for i, line in enumerate(ctx.claim.lines):
        pointers = tuple(line.diagnosis_pointers or ())
        if not pointers:
            yield Issue(
                f"lines[{i}].diagnosis_pointers",
                "The line does not point at any diagnosis.",
                "Point the line at the diagnosis that supports it (SV107).",
            )
            continue
        if len(pointers) > MAX_POINTERS:
            yield Issue(
                f"lines[{i}].diagnosis_pointers",
                "A line can point at no more than 4 diagnoses.",
                "Keep the four most relevant pointers.",
                str(len(pointers)),
            )
        seen: set[int] = set()
        for k, pointer in enumerate(pointers):
            path = f"lines[{i}].diagnosis_pointers[{k}]"
            if not isinstance(pointer, int) or not 1 <= pointer <= count:
                yield Issue(
                    path,
                    f"Diagnosis pointer {pointer} does not point at a diagnosis on the claim "
                    f"(the claim has {count}).",
                    "Point at a listed diagnosis (1 = the first).",
                    str(pointer),
                )
            elif pointer in seen:
                yield Issue(
                    path,
                    f"Diagnosis pointer {pointer} is repeated on the line.",
                    "Remove the repeated pointer.",
                    str(pointer),
                )
            seen.add(pointer)


@rule("LINE_UNITS_CHARGE", ERROR)
def check_units_and_charge(ctx: ScrubContext) -> Iterator[Issue]:
    """Units are greater than zero; charges are not negative."""
    for i, line in enumerate(ctx.claim.lines):
        units = _units(line)
        if units is None or units <= 0:
            yield Issue(
                f"lines[{i}].units",
                "The line's units must be greater than zero.",
                "Enter the number of units provided.",
                str(line.units),
            )
        if not isinstance(line.charge_cents, int) or line.charge_cents < 0:
            yield Issue(
                f"lines[{i}].charge_cents",
                "The line charge is missing or negative.",
                "Enter the charge for the line (0.00 or more).",
                str(line.charge_cents),
            )


def _units(line: ServiceLine) -> Decimal | None:
    """The line's units as a finite Decimal, or None when missing or unreadable (floats are refused)."""
    try:
        units = Decimal(line.units) if not isinstance(line.units, float) else None
    except (InvalidOperation, TypeError, ValueError):
        return None
    return units if units is not None and units.is_finite() else None


@rule("CPT_FORMAT_ONLY", INFO)
def note_cpt_format_only(ctx: ScrubContext) -> Iterator[Issue]:
    """Without a licensed CPT file, CPT codes are checked by format and range only."""
    if ctx.code_sets.cpt is None and any(_procedure_kind(p) == "cpt" for p in ctx.procedures):
        yield Issue(
            "lines",
            "CPT codes were checked by format and section range only: no licensed CPT file is loaded.",
            "Load the AMA CPT data file to check that each code exists.",
        )


@rule("LINE_PROCEDURE", ERROR)
def check_procedure_codes(ctx: ScrubContext) -> Iterator[Issue]:
    """Each line's procedure code is valid on its date of service (HCPCS file, CPT format or file)."""
    for i, code in enumerate(ctx.procedures):
        path = f"lines[{i}].procedure"
        dos = ctx.line_dates[i] or ctx.first_dos or ctx.today
        kind = _procedure_kind(code)
        if not code:
            yield Issue(path, "The line has no procedure code.", "Enter the CPT or HCPCS code.")
        elif kind == "hcpcs":
            if not ctx.code_sets.hcpcs.is_valid(code, dos):
                known = ctx.code_sets.hcpcs.get(code)
                why = "is not valid on the date of service" if known else "is not a HCPCS Level II code"
                yield Issue(
                    path,
                    f"Procedure {code} {why}.",
                    "Use the code in force on the date of service (CMS quarterly HCPCS file).",
                    code,
                )
        elif kind == "cpt":
            problem = cpt.format_problem(code)
            if problem:
                yield Issue(path, f"Procedure {code}: {problem}.", "Check the CPT code for a typo.", code)
            elif ctx.code_sets.cpt is not None and code not in ctx.code_sets.cpt:
                yield Issue(
                    path,
                    f"Procedure {code} is not in the loaded CPT code set.",
                    "Use a current CPT code.",
                    code,
                )
        else:
            yield Issue(
                path,
                f"Procedure {code} is neither a CPT nor a HCPCS Level II code.",
                "CPT codes are 5 digits (or 4 digits + F/T/U); HCPCS is a letter and 4 digits.",
                code,
            )


# How CMS long descriptors mark a not-otherwise-classified code (J3490 "Unclassified drugs").
# "Not otherwise specified" alone is not enough: J3301 "triamcinolone acetonide, not
# otherwise specified, 10 mg" is a specific drug code; only the xx99 catch-alls
# (A9999 "miscellaneous ... not otherwise specified") need a narrative.
_NOC_MARKERS = ("not otherwise classified", "unlisted", "unclassified")
_NOC_CATCH_ALL_MARKERS = ("not otherwise specified", "miscellaneous")


def _is_noc(code: str, description: str) -> bool:
    text = description.lower()
    if any(marker in text for marker in _NOC_MARKERS):
        return True
    return code.endswith("99") and any(marker in text for marker in _NOC_CATCH_ALL_MARKERS)


@rule("LINE_NOC_DESCRIPTION", ERROR)
def check_noc_description(ctx: ScrubContext) -> Iterator[Issue]:
    """Not-otherwise-classified HCPCS codes carry a description of the service (SV101-7)."""
    for i, code in enumerate(ctx.procedures):
        if _procedure_kind(code) != "hcpcs" or (ctx.claim.lines[i].description or "").strip():
            continue
        found = ctx.code_sets.hcpcs.get(code)
        if found is not None and _is_noc(code, found.long_description):
            yield Issue(
                f"lines[{i}].description",
                f"{code} is a not-otherwise-classified code and needs a description of what was provided.",
                "Describe the item or service (SV101-7).",
                code,
            )


@rule("LINE_MODIFIER", ERROR)
def check_modifiers(ctx: ScrubContext) -> Iterator[Issue]:
    """At most four modifiers per line, each a valid CPT or HCPCS modifier on the DOS, no repeats."""
    for i, line in enumerate(ctx.claim.lines):
        mods = tuple(line.modifiers or ())
        dos = ctx.line_dates[i] or ctx.first_dos
        if len(mods) > MAX_MODIFIERS:
            yield Issue(
                f"lines[{i}].modifiers",
                "A line can carry at most four modifiers.",
                "Keep the four that affect payment first.",
                str(len(mods)),
            )
        seen: set[str] = set()
        for k, modifier in enumerate(mods):
            value = modifier.strip().upper() if isinstance(modifier, str) else ""
            path = f"lines[{i}].modifiers[{k}]"
            if len(value) != 2 or not modifiers.is_valid(value, dos):
                yield Issue(
                    path,
                    f"Modifier {value or '(blank)'} is not a valid CPT or HCPCS modifier"
                    + (" on the date of service." if len(value) == 2 else "."),
                    "Use a current two-character modifier.",
                    value,
                )
            elif value in seen:
                yield Issue(path, f"Modifier {value} is repeated on the line.", "Remove the repeat.", value)
            seen.add(value)


# -- NCCI and add-on edits ----------------------------------------------------------------


@rule("NCCI_PTP", ERROR)
def check_ptp(ctx: ScrubContext) -> Iterator[Issue]:
    """NCCI procedure-to-procedure edits between lines on the same date of service."""
    store = ctx.code_sets.ptp
    if store is None or not ctx.rules.ptp_enabled:
        return
    lines = ctx.claim.lines
    codes = ctx.procedures
    for a in range(len(lines)):
        for b in range(len(lines)):
            if a == b or not codes[a] or not codes[b] or codes[a] == codes[b]:
                continue
            dos = ctx.line_dates[a]
            if dos is None or dos != ctx.line_dates[b]:
                continue
            edit = store.edit_for(codes[a], codes[b], dos)
            if edit is None or edit.modifier_indicator == 9:
                continue
            path = f"lines[{b}].procedure"
            if edit.modifier_indicator == 0:
                yield Issue(
                    path,
                    f"{codes[b]} is not paid with {codes[a]} on the same day (NCCI PTP edit, "
                    "modifier indicator 0: no modifier can bypass it).",
                    f"Remove {codes[b]} unless it was on a different day; a modifier will not help.",
                    codes[b],
                )
            elif not (
                modifiers.bypasses_ptp(lines[a].modifiers) or modifiers.bypasses_ptp(lines[b].modifiers)
            ):
                yield Issue(
                    path,
                    f"{codes[b]} is bundled into {codes[a]} on the same day (NCCI PTP edit, "
                    "modifier indicator 1).",
                    "If the service was distinct (separate site, session or encounter) and documented, "
                    "add XE/XS/XP/XU, 59, 25 or an anatomic modifier; otherwise remove the line.",
                    codes[b],
                )


@rule("NCCI_MUE", ERROR)
def check_mue(ctx: ScrubContext) -> Iterator[Issue]:
    """Units within the NCCI medically unlikely edit: per line (MAI 1) or per day (MAI 2, 3)."""
    table = ctx.code_sets.mue
    if table is None or not ctx.rules.mue_enabled:
        return
    per_day: dict[tuple[str, date | None], tuple[Decimal, int]] = {}
    for i, code in enumerate(ctx.procedures):
        edit = table.get(code)
        units = _units(ctx.claim.lines[i])
        if edit is None or units is None:
            continue
        if edit.adjudication_indicator == 1:
            if units > edit.units:
                yield Issue(
                    f"lines[{i}].units",
                    f"{units} units of {code} exceed the MUE of {edit.units} per line (MAI 1).",
                    "Bill only the units given; if more were medically necessary at separate "
                    "sites or sessions, split them across lines with 76, 91 or anatomic modifiers.",
                    str(units),
                )
        else:
            key = (code, ctx.line_dates[i])
            total, first = per_day.get(key, (Decimal(0), i))
            per_day[key] = (total + units, first)
    for (code, _day), (total, first) in per_day.items():
        edit = table.get(code)
        if edit is None or total <= edit.units:
            continue
        policy = edit.adjudication_indicator == 2
        yield Issue(
            f"lines[{first}].units",
            f"{total} units of {code} on one day exceed the MUE of {edit.units} per day "
            f"(MAI {edit.adjudication_indicator}, {'policy' if policy else 'clinical'}).",
            "Correct the units; a policy MUE cannot be exceeded."
            if policy
            else "Correct the units, or be ready to appeal with records showing the medical necessity.",
            str(total),
        )


@rule("ADDON_PRIMARY", ERROR)
def check_add_on_codes(ctx: ScrubContext) -> Iterator[Issue]:
    """An add-on code is billed with one of its primary codes on the same date of service."""
    table = ctx.code_sets.add_ons
    for i, code in enumerate(ctx.procedures):
        primaries = table.primaries(code)
        if primaries is None:
            continue
        dos = ctx.line_dates[i]
        has_primary = any(
            other in primaries and ctx.line_dates[j] == dos
            for j, other in enumerate(ctx.procedures)
            if j != i
        )
        if not has_primary:
            sample = ", ".join(sorted(primaries)[:5]) + ("..." if len(primaries) > 5 else "")
            yield Issue(
                f"lines[{i}].procedure",
                f"Add-on code {code} is billed without its primary procedure ({sample}) on the same day.",
                "Add the primary service, or remove the add-on code.",
                code,
            )


# -- the runner ---------------------------------------------------------------------------


# -- eligibility (the last 270/271 check; silent without one) ---------------------------------


def _same_payer(ctx: ScrubContext, facts: EligibilityFacts) -> bool:
    payer_id = getattr(getattr(ctx.claim, "payer", None), "payer_id", None)
    return not facts.payer_id or payer_id == facts.payer_id


@rule("ELIGIBILITY_NOT_ACTIVE", ERROR)
def check_eligibility_active(ctx: ScrubContext) -> Iterator[Issue]:
    """Coverage active on every date of service, according to the last eligibility check."""
    facts = ctx.eligibility
    if facts is None or not _same_payer(ctx, facts):
        return
    if facts.status == "not_found":
        yield Issue(
            "subscriber.member_id",
            "The payer did not find this member in the last eligibility check (271 AAA).",
            "Verify the member id, name and birth date against the insurance card, then check eligibility again.",
        )
        return
    if facts.status not in ("active", "inactive"):
        return
    for index, day in enumerate(ctx.line_dates):
        if day is None:
            continue
        before = facts.coverage_start is not None and day < facts.coverage_start
        after = facts.coverage_end is not None and day > facts.coverage_end
        if facts.status == "inactive" or before or after:
            when = (
                f"coverage ended {facts.coverage_end.isoformat()}"
                if after and facts.coverage_end
                else f"coverage starts {facts.coverage_start.isoformat()}"
                if before and facts.coverage_start
                else "the payer reports the coverage inactive"
            )
            yield Issue(
                f"lines[{index}].service_date",
                f"Coverage is not active on the date of service {day.isoformat()}: {when} (last eligibility "
                "check).",
                "Bill the payer that covered the patient on that date, or the patient; check eligibility again "
                "if the coverage was renewed.",
                day.isoformat(),
            )


@rule("ELIGIBILITY_OTHER_PAYER_PRIMARY", ERROR)
def check_eligibility_primary(ctx: ScrubContext) -> Iterator[Issue]:
    """The last eligibility check names another payer as primary, but this claim bills this payer first."""
    facts = ctx.eligibility
    if facts is None or not facts.other_payer_primary or not _same_payer(ctx, facts):
        return
    responsibility = getattr(getattr(ctx.claim, "subscriber", None), "responsibility", "P")
    if responsibility != "P":
        return
    names = ", ".join(facts.other_payers) or "another payer"
    yield Issue(
        "subscriber.responsibility",
        f"The payer's 271 says {names} is primary, but this claim is sent to it as primary (SBR01 P).",
        "Bill the primary payer first and send this payer a secondary claim with the primary's adjudication "
        "(2320/2430), or update the coverage order after confirming with the patient.",
        responsibility,
    )


@rule("ELIGIBILITY_MEMBER_ID", ERROR)
def check_eligibility_member_id(ctx: ScrubContext) -> Iterator[Issue]:
    """The member id on the claim matches the one the payer answered with in the last 271."""
    facts = ctx.eligibility
    if facts is None or not facts.member_id or not _same_payer(ctx, facts):
        return
    member_id = getattr(getattr(ctx.claim, "subscriber", None), "member_id", "")
    if not isinstance(member_id, str):
        return
    if member_id.strip().upper() != facts.member_id.strip().upper():
        # Both ids are PHI: the message says that they differ, not what they are.
        yield Issue(
            "subscriber.member_id",
            "The subscriber member id differs from the one the payer returned in the last eligibility check "
            "(271 2100C NM109).",
            "Update the coverage's member id to the payer's (see the eligibility result) and rebuild the claim.",
        )


RULE_IDS: frozenset[str] = frozenset(r.rule_id for r in RULES)


class Scrubber:
    """Runs the rules over claims with one set of code sets and per-payer rules."""

    def __init__(
        self,
        code_sets: CodeSets | None = None,
        *,
        payer_rules: dict[str, PayerRules] | None = None,
        default_rules: PayerRules | None = None,
        rules: list[Rule] | None = None,
    ) -> None:
        self.code_sets = code_sets or CodeSets.default()
        self.payer_rules = dict(payer_rules or {})
        self.default_rules = default_rules or PayerRules()
        self.rules = list(RULES if rules is None else rules)

    def rules_for(self, claim: Claim) -> PayerRules:
        payer_id = getattr(getattr(claim, "payer", None), "payer_id", None)
        return self.payer_rules.get(payer_id, self.default_rules) if payer_id else self.default_rules

    def scrub(
        self,
        claim: Claim,
        *,
        today: date | None = None,
        rules: PayerRules | None = None,
        eligibility: EligibilityFacts | None = None,
    ) -> list[ScrubFinding]:
        """Every finding for the claim, errors first. Never raises on bad claim data.

        ``eligibility`` (the last 270/271 check of the claim's coverage) turns on the
        eligibility rules; without it they stay silent.
        """
        payer = rules or self.rules_for(claim)
        findings: list[ScrubFinding] = []
        try:
            ctx = ScrubContext(claim, self.code_sets, payer, today or date.today(), eligibility=eligibility)
        except Exception as exc:  # a claim too broken to even read: one finding, not a traceback
            return [_internal_error("CLAIM_UNREADABLE", exc)]
        disabled = payer.disabled_rules
        for registered in self.rules:
            if registered.rule_id in disabled:
                continue
            try:
                for issue in registered.check(ctx):
                    findings.append(
                        ScrubFinding(
                            registered.rule_id,
                            issue.severity or registered.severity,
                            issue.message,
                            issue.path,
                            issue.hint,
                            issue.value,
                        )
                    )
            except Exception as exc:  # one broken rule must not hide the others' findings
                findings.append(_internal_error(registered.rule_id, exc))
        findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
        return findings


_SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}


def _internal_error(rule_id: str, exc: Exception) -> ScrubFinding:
    return ScrubFinding(
        "INTERNAL_ERROR",
        ERROR,
        f"Rule {rule_id} could not check this claim ({type(exc).__name__}); the claim data it reads is "
        "probably malformed.",
        rule_id,
        "Check the fields this rule reads; report the problem if the claim looks right.",
        rule_id,
    )


_default_scrubber: Scrubber | None = None


def scrub(
    claim: Claim,
    *,
    today: date | None = None,
    rules: PayerRules | None = None,
    eligibility: EligibilityFacts | None = None,
) -> list[ScrubFinding]:
    """Scrub with the shipped code sets (loaded on first use) and the given or default payer rules."""
    global _default_scrubber
    if _default_scrubber is None:
        _default_scrubber = Scrubber()
    return _default_scrubber.scrub(claim, today=today, rules=rules, eligibility=eligibility)
