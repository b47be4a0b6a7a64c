"""Claim adjustment group codes, CARCs and RARCs: what they mean for the patient and what
the biller does next.

The official CARC/RARC descriptions are X12's copyright, so the texts here are the
project's own words, built from ``shared/DENIAL_PLAYBOOK.md``. A user who licenses the
official lists can load them (CSV ``code,description,start,stop``) with
:func:`read_official_list`; the official wording then shows next to ours.

Actions (the playbook's vocabulary): NEW send a new original claim, REPL7 replacement
claim (frequency 7 with the payer claim number), APPEAL, BILL-PT bill the patient,
BILL-SEC bill the secondary or correct payer, WO write off, POST post and move on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from coding.errors import CodeSetError


@dataclass(frozen=True, slots=True)
class AdjustmentCode:
    """One group code, CARC or RARC with our explanation and the biller's next step."""

    kind: str  # "group", "carc" or "rarc"
    code: str
    meaning: str  # for the billing specialist
    patient_explanation: str  # plain language, for a statement or the portal
    biller_action: str
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OfficialCode:
    """A row of a licensed official list: the code's own description and its dates."""

    code: str
    description: str
    start: date | None
    stop: date | None

    def active_on(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.stop is None or day <= self.stop)


def _g(code: str, meaning: str, patient: str, action: str, *actions: str) -> AdjustmentCode:
    return AdjustmentCode("group", code, meaning, patient, action, actions)


def _c(code: str, meaning: str, patient: str, action: str, *actions: str) -> AdjustmentCode:
    return AdjustmentCode("carc", code, meaning, patient, action, actions)


def _r(code: str, meaning: str, patient: str, action: str, *actions: str) -> AdjustmentCode:
    return AdjustmentCode("rarc", code, meaning, patient, action, actions)


GROUP_CODES: dict[str, AdjustmentCode] = {
    a.code: a
    for a in (
        _g(
            "CO",
            "Contractual obligation: the provider absorbs this amount",
            "Your provider's contract with your plan covers this amount; you do not owe it.",
            "Write off; check the allowed amount against the contract for underpayment.",
            "WO",
        ),
        _g(
            "PR",
            "Patient responsibility",
            "Your plan says this part is yours to pay (or your other insurance's).",
            "Bill the secondary payer if there is one, otherwise the patient.",
            "BILL-SEC",
            "BILL-PT",
        ),
        _g(
            "OA",
            "Other adjustment, neither contractual nor the patient's",
            "An adjustment your plan made for a reason other than your share; you do not owe it.",
            "Post it; look at the reason code (duplicate, prior payer) before acting.",
            "POST",
        ),
        _g(
            "PI",
            "Payer-initiated reduction without a contract basis",
            "Your plan reduced the payment; this is not billed to you.",
            "Do not bill the patient; appeal if the reduction is wrong.",
            "APPEAL",
            "WO",
        ),
        _g(
            "CR",
            "Correction or reversal (no longer used in 5010: reversals are CLP02 = 22)",
            "A correction to an earlier payment on your claim.",
            "Net the reversal against the original by payer claim number.",
            "POST",
        ),
    )
}

CARCS: dict[str, AdjustmentCode] = {
    a.code: a
    for a in (
        _c("1", "Deductible", "This counts toward your deductible, the amount you pay before your plan pays.",
           "Bill the secondary if any (check for an MA18 crossover first), otherwise the patient.",
           "BILL-SEC", "BILL-PT"),
        _c("2", "Coinsurance", "This is your percentage share of the cost under your plan.",
           "Bill the secondary or the patient; never a QMB patient (RARC N781/N782).", "BILL-SEC", "BILL-PT"),
        _c("3", "Copayment", "This is the fixed copay your plan sets for this kind of visit.",
           "Collect from the patient, ideally at check-in.", "BILL-PT"),
        _c("4", "Modifier missing or does not fit the procedure",
           "Your plan needs a coding correction from your provider; you do not need to do anything.",
           "Fix the modifier (26/TC, LT/RT...) and send a replacement claim (a new one if MA130).", "REPL7"),
        _c("5", "Procedure or bill type does not fit the place of service",
           "Your provider needs to correct where the service is recorded as given.",
           "Correct the place of service and send a replacement claim.", "REPL7"),
        _c("6", "Procedure does not fit the patient's age",
           "Your plan questioned the service for your age; your provider will check the record.",
           "Check the birth date and the code; correct, or appeal with records if both are right.",
           "REPL7", "APPEAL"),
        _c("7", "Procedure does not fit the patient's sex",
           "Your plan questioned the service against the sex on file; your provider will check it.",
           "Check the recorded sex and the code; correct or appeal with records.", "REPL7", "APPEAL"),
        _c("8", "Procedure does not fit the provider type or specialty",
           "Your provider needs to correct which clinician is listed on the claim.",
           "Fix the rendering NPI or taxonomy and send a replacement claim.", "REPL7"),
        _c("9", "Diagnosis does not fit the patient's age",
           "Your plan questioned a diagnosis for your age; your provider will check it.",
           "Check the birth date and the diagnosis; correct or appeal.", "REPL7", "APPEAL"),
        _c("10", "Diagnosis does not fit the patient's sex",
           "Your plan questioned a diagnosis against the sex on file; your provider will check it.",
           "Check the recorded sex and the diagnosis; correct or appeal.", "REPL7", "APPEAL"),
        _c("11", "Diagnosis does not support the procedure",
           "Your plan needs the diagnosis linked to this service clarified by your provider.",
           "Recode or re-point the diagnosis; appeal with notes if the coding is right.", "REPL7", "APPEAL"),
        _c("15", "Authorization number missing or invalid",
           "Your plan did not find the approval number for this service on the claim.",
           "Add the authorization number (retro-authorize if the payer allows) and resubmit.", "REPL7"),
        _c("16", "Claim lacks information or has a billing error",
           "Your plan needs more or corrected information from your provider; you owe nothing yet.",
           "Fix the element the remark code names; with MA130 send a new claim.", "NEW"),
        _c("18", "Exact duplicate claim or service",
           "This looks like a repeat of a claim already sent; it is not charged twice.",
           "Do not resubmit; track the original. If truly repeated, add 76/77/91 and correct.",
           "POST", "REPL7"),
        _c("19", "Work injury: workers' compensation carrier is liable",
           "Because this relates to a work injury, the workers' compensation carrier should pay.",
           "Bill the workers' compensation carrier.", "BILL-SEC"),
        _c("20", "Injury covered by a liability carrier",
           "Another insurer (liability) is responsible for this injury.",
           "Bill the liability carrier.", "BILL-SEC"),
        _c("21", "Injury covered by no-fault insurance",
           "Your auto or no-fault insurer should pay for this first.",
           "Bill the no-fault carrier.", "BILL-SEC"),
        _c("22", "Another payer may be primary (coordination of benefits)",
           "Your plan thinks another insurance should pay first; please update your insurance details.",
           "Update COB with the patient, bill the primary, then send the secondary claim.", "BILL-SEC"),
        _c("23", "Reduced because of what the prior payer did",
           "This reflects what your other insurance already paid or adjusted.",
           "Post it; bill any remaining patient share to the patient or tertiary payer.", "POST"),
        _c("24", "Covered under a capitation or managed-care plan",
           "Your managed-care plan (e.g. Medicare Advantage) is responsible for this service.",
           "Bill the managed-care plan; write off if capitated.", "BILL-SEC", "WO"),
        _c("26", "Service before coverage began",
           "Your coverage with this plan had not started on the date of service.",
           "Re-verify eligibility (270/271); bill the right payer, else the patient.", "BILL-SEC", "BILL-PT"),
        _c("27", "Service after coverage ended",
           "Your coverage with this plan had ended by the date of service.",
           "Re-verify eligibility; bill the right payer, else the patient.", "BILL-SEC", "BILL-PT"),
        _c("29", "Timely filing limit passed",
           "The claim reached your plan late; this is not billed to you.",
           "Write off unless you have proof of timely filing (999/277CA acceptance), then appeal.",
           "WO", "APPEAL"),
        _c("31", "Patient not identified as the plan's member",
           "Your plan could not match you to a member; please check your insurance card details.",
           "Verify eligibility and correct the member id, name or birth date.", "NEW", "REPL7"),
        _c("35", "Lifetime benefit maximum reached",
           "You have used the lifetime maximum your plan allows for this benefit.",
           "Bill the secondary or the patient.", "BILL-SEC", "BILL-PT"),
        _c("39", "Denied when authorization was requested",
           "Your plan did not approve this service when asked in advance.",
           "Peer-to-peer review or appeal.", "APPEAL"),
        _c("45", "Charge above the fee schedule or contracted amount",
           "This is the discount your provider agreed with your plan; you do not owe it.",
           "Write off; compare the allowed amount with the contract.", "WO"),
        _c("49", "Routine or screening service not covered",
           "Your plan does not cover this as a routine service; ask your provider about it.",
           "Check the preventive coding and frequency; bill the patient only with a waiver.",
           "REPL7", "BILL-PT"),
        _c("50", "Not medically necessary in the payer's judgement",
           "Your plan decided this service was not medically necessary.",
           "Appeal with records; with a signed ABN (GA) bill the patient; without one write off.",
           "APPEAL", "WO"),
        _c("55", "Experimental or investigational procedure",
           "Your plan considers this service experimental and does not cover it.",
           "Appeal with literature, or bill the patient if a waiver was signed.", "APPEAL"),
        _c("56", "Procedure not proven effective",
           "Your plan does not consider this treatment proven for your condition.",
           "Appeal with literature, or bill the patient if a waiver was signed.", "APPEAL"),
        _c("58", "Service given in an invalid place of service",
           "Your provider needs to correct where the service is recorded as given.",
           "Correct the place of service and send a replacement claim.", "REPL7"),
        _c("59", "Multiple or concurrent procedure rule applied",
           "Your plan paid less because several procedures were done at the same time.",
           "Verify ranking and modifier 51; post.", "POST"),
        _c("96", "Non-covered charge",
           "Your plan does not cover this service; the remark code says why.",
           "Read the remark code: PR means bill the patient, CO means write off or appeal.", "WO", "APPEAL"),
        _c("97", "Bundled into another service already paid",
           "Payment for this was included in another service on the same day.",
           "If distinct, add 59/XE/XS/XP/XU or 25 and correct; otherwise write off.", "REPL7", "WO"),
        _c("100", "Payment made to the patient",
           "Your plan paid you directly; please forward the payment to your provider.",
           "Bill the patient for the amount.", "BILL-PT"),
        _c("107", "Qualifying service missing or not paid",
           "A related service this one depends on is not on the claim.",
           "Add the primary service or bill the two together.", "REPL7"),
        _c("109", "Not covered by this payer: send to the correct payer",
           "This should be billed to another plan or contractor.",
           "Bill the correct payer (MA plan, DME MAC, SNF...).", "NEW"),
        _c("119", "Benefit maximum for the period reached",
           "You have reached your plan's limit for this benefit in this period.",
           "Bill the secondary or the patient.", "BILL-SEC", "BILL-PT"),
        _c("140", "Member id and name do not match",
           "The name on the claim did not match your plan's records; please check your card.",
           "Correct the name or id to match the card.", "REPL7"),
        _c("146", "Diagnosis invalid for the date of service",
           "Your provider needs to update a diagnosis code; you do not need to do anything.",
           "Use the billable ICD-10-CM code valid on the DOS.", "REPL7"),
        _c("150", "Payer considers the level of service unsupported",
           "Your plan paid for a lower level of service than billed.",
           "Check the documentation and the level; correct or appeal with records.", "REPL7", "APPEAL"),
        _c("151", "Number of services not supported",
           "Your plan paid for fewer units than billed.",
           "Check the MUE: MAI 1 split lines with 76/91/anatomic modifiers, MAI 2 correct units, "
           "MAI 3 appeal with records.", "REPL7", "APPEAL"),
        _c("167", "Diagnosis not covered",
           "Your plan does not cover this service for the diagnosis given.",
           "Correct the diagnosis if miscoded, otherwise appeal; with an ABN bill the patient.",
           "REPL7", "APPEAL"),
        _c("170", "Payment denied for this provider type",
           "Your plan does not pay this type of provider for this service.",
           "Fix enrollment or credentialing, then resubmit; else write off.", "NEW", "WO"),
        _c("181", "Procedure code invalid on the date of service",
           "Your provider needs to update a procedure code; you do not need to do anything.",
           "Use the code valid on the DOS (check the quarter's HCPCS/CPT).", "REPL7"),
        _c("182", "Modifier invalid on the date of service",
           "Your provider needs to update a modifier; you do not need to do anything.",
           "Use a modifier valid on the DOS.", "REPL7"),
        _c("183", "Referring provider not eligible to refer",
           "Your plan could not accept the referring clinician listed on the claim.",
           "Correct the referring NPI (must be enrolled).", "REPL7"),
        _c("185", "Rendering provider not eligible",
           "Your plan did not recognize the clinician who treated you for this service.",
           "Fix enrollment or the rendering NPI.", "NEW", "WO"),
        _c("189", "Unlisted or not-otherwise-classified code when a specific code exists",
           "Your provider needs to use a more specific code.",
           "Recode with the specific code.", "REPL7"),
        _c("197", "Precertification or authorization absent",
           "Your plan needed approval before this service and did not find it.",
           "Get a retro-authorization and appeal if allowed; else write off (in-network CO).",
           "APPEAL", "WO"),
        _c("198", "Precertification or authorization exceeded",
           "More services were given than your plan approved.",
           "Request an authorization update or appeal; else write off.", "APPEAL", "WO"),
        _c("204", "Not covered under the patient's current benefit plan",
           "Your current plan does not include this service.",
           "Bill the patient (with notice of financial responsibility) or the secondary.",
           "BILL-PT", "BILL-SEC"),
        _c("206", "NPI missing", "Your provider needs to add an identifier to the claim.",
           "Add the NPI and resubmit.", "REPL7"),
        _c("207", "NPI invalid format", "Your provider needs to correct an identifier on the claim.",
           "Fix the NPI (10 digits, Luhn check digit).", "REPL7"),
        _c("208", "NPI not matched", "Your plan could not match your provider's identifier.",
           "Check the NPI against enrollment.", "REPL7"),
        _c("226", "Requested information not received from the provider",
           "Your plan asked your provider for more information.",
           "Send the records/attachment (275/PWK) and ask for reprocessing.", "APPEAL"),
        _c("227", "Requested information not received from the patient",
           "Your plan asked you for information (e.g. other insurance or accident details); "
           "please answer your plan.", "Have the patient respond, then resubmit.", "REPL7"),
        _c("234", "Procedure not paid separately",
           "This service is included in the payment for another service.",
           "Write off (check the remark code).", "WO"),
        _c("236", "Procedure or modifier combination not allowed with another service that day (NCCI)",
           "Your plan does not pay these two services together on the same day.",
           "Indicator 1 with documentation: add the NCCI modifier and correct; indicator 0: write off.",
           "REPL7", "WO"),
        _c("242", "Services not provided by network providers",
           "Your provider is out of your plan's network for this service.",
           "Get the referral or appeal; else write off.", "APPEAL", "WO"),
        _c("252", "An attachment or other documentation is required",
           "Your plan needs a document from your provider to process this.",
           "Send the attachment (275/PWK) and request reprocessing.", "APPEAL"),
        _c("253", "Sequestration: federal payment reduction",
           "A federal budget rule reduced Medicare's payment; you do not owe it.",
           "Write off.", "WO"),
        _c("A1", "Claim or service denied: see the remark code",
           "Your plan denied this; the remark code explains why.",
           "Route by the remark code."),
        _c("B7", "Provider not certified or eligible for this service on this date",
           "Your plan did not recognize your provider's enrollment on that date.",
           "Fix enrollment or credentialing and resubmit; else write off.", "NEW", "WO"),
        _c("B9", "Patient enrolled in hospice",
           "Because you are in hospice care, the hospice is responsible for this service.",
           "Bill the hospice, or use GW if unrelated to the terminal condition.", "BILL-SEC", "REPL7"),
        _c("B11", "Claim transferred to the proper payer",
           "Your claim was forwarded to the right plan.",
           "Follow up with that payer.", "POST"),
        _c("B13", "Previously paid",
           "This was already paid on an earlier claim.",
           "Locate the prior payment and post.", "POST"),
        _c("B15", "Qualifying service must be paid first",
           "A related main service must be billed with this one.",
           "Add the primary service or bill the two together.", "REPL7"),
        _c("B16", "New-patient criteria not met",
           "Your plan counted you as an established patient.",
           "Recode to the established-patient E/M.", "REPL7"),
        _c("B20", "Service partly or fully furnished by another provider",
           "Part of this care was billed by another provider.",
           "Check global-period modifiers 54/55.", "REPL7", "WO"),
    )
}  # fmt: skip

RARCS: dict[str, AdjustmentCode] = {
    a.code: a
    for a in (
        _r("MA130", "Unprocessable claim: incomplete or invalid data, no appeal rights",
           "Your plan could not process the claim as sent; your provider will send a corrected one.",
           "Send a new original claim (frequency 1) with the data fixed.", "NEW"),
        _r("MA18", "Claim crossed over to the supplemental insurer",
           "Medicare sent this claim on to your supplemental insurance.",
           "Do not bill the secondary yourself; wait for its payment.", "POST"),
        _r("MA07", "Claim crossed over to Medicaid",
           "Medicare sent this claim on to Medicaid.",
           "Do not bill Medicaid yourself; wait for its payment.", "POST"),
        _r("MA04", "Secondary payment needs the primary payer's payment information",
           "Your plan needs details of what your other insurance paid.",
           "Resend with the primary's adjudication (2320/2430).", "REPL7"),
        _r("M51", "Procedure code missing, incomplete or invalid",
           "Your provider needs to correct a procedure code.", "Fix the procedure code.", "REPL7"),
        _r("M119", "Missing, incomplete, invalid, deactivated or withdrawn National Drug Code (NDC)",
           "Your provider needs to add the drug's National Drug Code to the claim.",
           "Add the 11-digit NDC and units (LIN/CTP in 2410) and resubmit.", "REPL7"),
        _r("M76", "Diagnosis missing, incomplete or invalid",
           "Your provider needs to correct a diagnosis code.", "Fix the diagnosis code.", "REPL7"),
        _r("N290", "Rendering provider identifier missing or invalid",
           "Your provider needs to correct an identifier on the claim.",
           "Fix the rendering NPI.", "REPL7"),
        _r("N382", "Patient identifiers missing or invalid",
           "Please check that your plan has your correct member id, name and birth date.",
           "Verify eligibility and correct the patient's identifiers.", "REPL7"),
        _r("M15", "Separately billed services bundled together",
           "Your plan paid these services as one.", "Add the NCCI modifier if distinct; else write off.",
           "REPL7", "WO"),
        _r("N20", "Service not paid separately",
           "This service is included in another payment.", "Write off unless distinct.", "WO"),
        _r("M80", "Not covered when done in the same session as another service",
           "Your plan does not pay this together with another service from the same visit.",
           "Check NCCI and modifiers.", "REPL7", "WO"),
        _r("M86", "Service denied because payment already made for a similar procedure in the period",
           "Your plan limits how often this service is paid.", "Check the frequency limits.", "WO"),
        _r("N362", "Units exceed the maximum allowed",
           "More units were billed than your plan allows for one day.",
           "Check the MUE and split or correct units.", "REPL7", "APPEAL"),
        _r("N115", "Decision based on a local coverage determination (LCD)",
           "Your plan's local coverage rules decided this.", "Check the LCD; appeal with records.", "APPEAL"),
        _r("N386", "Decision based on a national coverage determination (NCD)",
           "Medicare's national coverage rules decided this.", "Check the NCD; appeal with records.", "APPEAL"),
        _r("N130", "Consult the plan's benefit documents",
           "Your plan's documents explain the limits that applied.", "Read the plan rules; bill per group code."),
        _r("N111", "Only appeal rights for a duplicate are available",
           "This was treated as a duplicate.", "Do not appeal unless it is not a duplicate.", "POST"),
        _r("N538", "A facility is responsible for this service (e.g. SNF or inpatient stay)",
           "The facility where you stayed is responsible for paying this.",
           "Bill the facility.", "BILL-SEC"),
        _r("N781", "QMB patient: do not bill the deductible to the patient",
           "Under your Medicare savings program you do not owe this deductible.",
           "Do not bill the patient; bill Medicaid if applicable.", "BILL-SEC"),
        _r("N782", "QMB patient: do not bill the coinsurance to the patient",
           "Under your Medicare savings program you do not owe this coinsurance.",
           "Do not bill the patient; bill Medicaid if applicable.", "BILL-SEC"),
        _r("N211", "No appeal rights for this adjudication",
           "This decision cannot be appealed.", "Correct and resubmit if an error, else write off.", "WO"),
        _r("N56", "Procedure code billed is not correct or valid for the services billed or the DOS",
           "Your provider needs to correct a procedure code.", "Use the code valid on the DOS.", "REPL7"),
        _r("M81", "Diagnosis must be coded to the highest level of specificity",
           "Your provider needs to use a more specific diagnosis code.",
           "Use a billable (leaf) ICD-10-CM code.", "REPL7"),
        _r("MA120", "Billing provider taxonomy or identifier missing or invalid",
           "Your provider needs to correct an identifier on the claim.",
           "Fix the billing provider's NPI or taxonomy.", "REPL7"),
    )
}  # fmt: skip


def lookup(kind: str, code: str) -> AdjustmentCode | None:
    """Our explanation of a group code ("group"), CARC ("carc") or RARC ("rarc")."""
    table = {"group": GROUP_CODES, "carc": CARCS, "rarc": RARCS}.get(kind)
    return None if table is None else table.get(code.strip().upper())


def _parse_date(text: str, name: str, line: int) -> date | None:
    text = text.strip()
    if not text:
        return None
    for shape in (text, f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 else text):
        try:
            return date.fromisoformat(shape)
        except ValueError:
            continue
    try:
        month, day, year = (int(p) for p in text.split("/"))
        return date(year, month, day)
    except ValueError as exc:
        raise CodeSetError(
            "start/stop must be a date (YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY)",
            file=name,
            line=line,
            rule="date",
        ) from exc


@dataclass(slots=True)
class OfficialList:
    """A licensed official CARC or RARC list, keyed by code."""

    kind: str
    codes: dict[str, OfficialCode] = field(default_factory=dict)

    def get(self, code: str) -> OfficialCode | None:
        return self.codes.get(code.strip().upper())


def read_official_list(source: Path | str | bytes, kind: str) -> OfficialList:
    """Read an official list as CSV ``code,description,start,stop`` (header row optional)."""
    if kind not in ("carc", "rarc"):
        raise CodeSetError("kind must be 'carc' or 'rarc'", rule="kind")
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise CodeSetError(f"cannot read the list: {exc.strerror}", file=name, rule="readable") from exc
    result = OfficialList(kind)
    for number, row in enumerate(csv.reader(io.StringIO(raw.decode("utf-8-sig", "replace"))), start=1):
        if not row or not row[0].strip():
            continue
        if number == 1 and row[0].strip().lower() == "code":
            continue
        if len(row) < 2:
            raise CodeSetError("expected code,description,start,stop", file=name, line=number, rule="layout")
        code = row[0].strip().upper()
        start = _parse_date(row[2], name, number) if len(row) > 2 else None
        stop = _parse_date(row[3], name, number) if len(row) > 3 else None
        result.codes[code] = OfficialCode(code, row[1].strip(), start, stop)
    if not result.codes:
        raise CodeSetError("no code found", file=name, rule="layout")
    return result
