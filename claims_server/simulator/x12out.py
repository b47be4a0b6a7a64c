"""The simulated clearinghouse's outbound X12: 277CA (005010X214) and 835 (005010X221A1).

Written with ``edi.writer.X12Writer`` (counts, trailers and delimiter checks come from
it). Both answer one parsed 837 transaction set: the envelope is addressed back to the
837's sender (its ISA06/GS02) from the 837's receiver, with control numbers the caller
derives from the 837's own (so the answer is the same for the same input).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from claims_server.simulator.rules import Adjustment, ClaimResult, FrontEndVerdict
from edi.claims import Claim
from edi.writer import X12Writer, format_amount
from edi.x837 import Parsed837

IMPLEMENTATION_277CA = "005010X214"
IMPLEMENTATION_835 = "005010X221A1"

#: Fictitious payer contact and bank data printed on every 835.
PAYER_PHONE = "8005550199"
PAYER_EIN = "1999999999"

#: CLP06 codes of the 835 (a narrower list than the 837's SBR09: no CI, BL, 11 ...).
CLP06_CODES = frozenset(
    {
        "12",
        "13",
        "14",
        "15",
        "16",
        "17",
        "AM",
        "CH",
        "DS",
        "HM",
        "LM",
        "MA",
        "MB",
        "MC",
        "OF",
        "TV",
        "VA",
        "WC",
        "ZZ",
    }
)


def _d8(value: date) -> str:
    return value.strftime("%Y%m%d")


def _envelope(
    writer: X12Writer,
    parsed: Parsed837,
    *,
    functional_id: str,
    version: str,
    control: int,
    when: datetime,
    usage: str,
) -> None:
    batch = parsed.batch
    writer.begin_interchange(
        sender_qualifier=batch.receiver_qualifier,
        sender_id=batch.receiver_id or batch.receiver.identifier,
        receiver_qualifier=batch.sender_qualifier,
        receiver_id=batch.sender_id or batch.submitter.identifier,
        control_number=control,
        usage=usage,
        when=when,
    )
    writer.begin_group(
        functional_id=functional_id,
        sender_code=batch.application_receiver_code or batch.receiver.identifier,
        receiver_code=batch.application_sender_code or batch.submitter.identifier,
        control_number=control,
        version=version,
        when=when,
    )


def _patient_name(claim: Claim) -> tuple[str, str | None, str]:
    """(last, first, member id) of the patient as the payer knows them."""
    if claim.patient is not None:
        return claim.patient.last_name, claim.patient.first_name, claim.subscriber.member_id
    return claim.subscriber.last_name, claim.subscriber.first_name, claim.subscriber.member_id


def _service_dates(claim: Claim) -> tuple[date, date]:
    dates = [d for line in claim.lines for d in (line.service_date, line.service_date_end) if d]
    return min(dates), max(dates)


class _Levels:
    """HL numbering for a 277CA, where HL04 is sent at some levels and not used at others."""

    def __init__(self, writer: X12Writer) -> None:
        self.writer = writer
        self.count = 0

    def add(self, parent: int | None, level_code: str, child_code: str | None) -> int:
        self.count += 1
        self.writer.segment("HL", str(self.count), str(parent) if parent else None, level_code, child_code)
        return self.count


def write_277ca(
    parsed: Parsed837,
    verdicts: Sequence[tuple[Claim, FrontEndVerdict, str]],
    *,
    control: int,
    when: datetime,
    usage: str,
) -> str:
    """One 277CA answering every claim of ``parsed``: (claim, verdict, payer claim number)."""
    batch = parsed.batch
    writer = X12Writer()
    _envelope(
        writer,
        parsed,
        functional_id="HN",
        version=IMPLEMENTATION_277CA,
        control=control,
        when=when,
        usage=usage,
    )
    writer.begin_transaction("277", "0001", IMPLEMENTATION_277CA)
    today = when.date()
    writer.segment("BHT", "0085", "08", f"{control:09d}", _d8(today), when.strftime("%H%M%S"), "TH")
    levels = _Levels(writer)
    # 2000A/2100A: the information source (the clearinghouse answering for the payers).
    source = levels.add(None, "20", "1")
    writer.segment(
        "NM1", "AY", "2", batch.receiver.name[:60], None, None, None, None, "46", batch.receiver.identifier
    )
    writer.segment("TRN", "1", f"{control:09d}")
    writer.segment("DTP", "050", "D8", _d8(today))
    writer.segment("DTP", "009", "D8", _d8(today))
    # 2000B/2200B: the information receiver (the submitter) with the batch totals.
    accepted = [(c, v, n) for c, v, n in verdicts if v.accepted]
    rejected = [(c, v, n) for c, v, n in verdicts if not v.accepted]
    receiver = levels.add(source, "21", "1")
    writer.segment(
        "NM1", "41", "2", batch.submitter.name[:60], None, None, None, None, "46", batch.submitter.identifier
    )
    writer.segment("TRN", "2", batch.reference or parsed.control_number)
    total = sum(c.total_charge_cents for c, _, _ in verdicts)
    writer.segment("STC", ("A1", "19", "PR"), _d8(today), "WQ", format_amount(total))
    if accepted:
        writer.segment("QTY", "90", str(len(accepted)))
    if rejected:
        writer.segment("QTY", "AA", str(len(rejected)))
    if accepted:
        writer.segment("AMT", "YU", format_amount(sum(c.total_charge_cents for c, _, _ in accepted)))
    if rejected:
        writer.segment("AMT", "YY", format_amount(sum(c.total_charge_cents for c, _, _ in rejected)))
    # 2000C per billing provider, 2000D per claim (patient level; our claims carry the patient).
    by_provider: dict[str, list[tuple[Claim, FrontEndVerdict, str]]] = {}
    for item in verdicts:
        by_provider.setdefault(item[0].billing_provider.npi, []).append(item)
    for npi, items in by_provider.items():
        bp = items[0][0].billing_provider
        provider = levels.add(receiver, "19", "1")
        writer.segment(
            "NM1",
            "85",
            "2",
            (bp.organization_name or bp.last_name or "")[:60],
            None,
            None,
            None,
            None,
            "XX",
            npi,
        )
        writer.segment("TRN", "1", "0")
        # 2200C STC02 is not used: the provider-level status carries no date of its own.
        writer.segment(
            "STC",
            ("A1", "19", "PR"),
            None,
            "WQ",
            format_amount(sum(c.total_charge_cents for c, _, _ in items)),
        )
        ok = [i for i in items if i[1].accepted]
        bad = [i for i in items if not i[1].accepted]
        if ok:
            writer.segment("QTY", "QA", str(len(ok)))
        if bad:
            writer.segment("QTY", "QC", str(len(bad)))
        if ok:
            writer.segment("AMT", "YU", format_amount(sum(c.total_charge_cents for c, _, _ in ok)))
        if bad:
            writer.segment("AMT", "YY", format_amount(sum(c.total_charge_cents for c, _, _ in bad)))
        for claim, verdict, payer_number in items:
            # 2000D HL04 is not used (the patient level never has children in a 277CA).
            levels.add(provider, "PT", None)
            last, first, member = _patient_name(claim)
            writer.segment(
                "NM1", "QC", "1", last[:60], (first or "")[:35] or None, None, None, None, "MI", member
            )
            writer.segment("TRN", "2", claim.patient_control_number)
            action = "WQ" if verdict.accepted else "U"
            first_status, *more = verdict.statuses
            writer.segment(
                "STC",
                first_status,
                _d8(today),
                action,
                format_amount(claim.total_charge_cents),
                None,
                None,
                None,
                None,
                None,
                more[0] if more else None,
                more[1] if len(more) > 1 else None,
                verdict.message or None,
            )
            if verdict.accepted:
                writer.segment("REF", "1K", payer_number)
            start, end = _service_dates(claim)
            if start == end:
                writer.segment("DTP", "472", "D8", _d8(start))
            else:
                writer.segment("DTP", "472", "RD8", f"{_d8(start)}-{_d8(end)}")
    writer.end_transaction()
    writer.end_group()
    writer.end_interchange()
    return writer.getvalue()


def trace_number(control: int, index: int) -> str:
    """TRN02 of the ``index``-th transaction set (one per payer) of the 835 ``control``."""
    return f"{control:09d}{index:02d}"


def _cas_segments(writer: X12Writer, adjustments: Sequence[Adjustment], sign: int) -> None:
    """CAS segments, one per group (up to six reason/amount triplets each), in first-seen order."""
    groups: dict[str, list[str]] = {}
    for adj in adjustments:
        groups.setdefault(adj.group, []).extend([adj.reason, format_amount(sign * adj.amount_cents), ""])
    for group, triplets in groups.items():
        for start in range(0, len(triplets), 18):
            chunk = triplets[start : start + 18]
            while chunk and not chunk[-1]:
                chunk.pop()
            writer.segment("CAS", group, *chunk)


def write_835(
    parsed: Parsed837,
    results_by_payer: Sequence[Sequence[ClaimResult]],
    *,
    control: int,
    when: datetime,
    usage: str,
    plb_by_payer: Sequence[Sequence[tuple[str, str, int]]] | None = None,
) -> str:
    """One 835 interchange, one transaction set (and one payment) per payer; balanced.

    A reversal (``ClaimResult.reversal``) is written with CLP02 = 22 and every charge,
    payment and adjustment amount negated, its CAS group codes kept (TR3 1.10.2.8).
    ``plb_by_payer``: each set's provider-level adjustments (PLB03-1, PLB03-2, cents), such
    as a forward balance: BPR02 = sum of CLP04 - sum of PLB, never below zero.
    """
    writer = X12Writer()
    _envelope(
        writer,
        parsed,
        functional_id="HP",
        version=IMPLEMENTATION_835,
        control=control,
        when=when,
        usage=usage,
    )
    # BPR16 (check issue / EFT effective date, 005010X221A1) is the day the payer pays, and a
    # payer produces the 835 when it pays: the simulated payer issues its check on the 835's
    # own date (DTM*405), never weeks after the file exists.
    paid_on = when.date()
    for index, results in enumerate(results_by_payer, start=1):
        payer = results[0].claim.payer
        bp = results[0].claim.billing_provider
        plb = list(plb_by_payer[index - 1]) if plb_by_payer else []
        total = sum(r.sign * r.paid_cents for r in results) - sum(cents for _, _, cents in plb)
        if total < 0:
            raise ValueError("an 835 cannot pay less than nothing: carry the balance forward (PLB FB)")
        writer.begin_transaction("835", f"{index:04d}", IMPLEMENTATION_835)
        trace = trace_number(control, index)
        if total > 0:
            writer.segment(
                "BPR",
                "I",
                format_amount(total),
                "C",
                "CHK",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                _d8(paid_on),
            )
        else:
            writer.segment(
                "BPR",
                "H",
                "0",
                "C",
                "NON",
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                _d8(paid_on),
            )
        writer.segment("TRN", "1", trace, PAYER_EIN)
        writer.segment("DTM", "405", _d8(when.date()))
        # N103/N104: the payer names itself by the id the 837 addressed it with (2010BB NM109),
        # so the remittance is tied to its payer: TRN03 alone is the clearinghouse's one EIN here.
        writer.segment("N1", "PR", payer.name[:60], "XV", payer.payer_id)
        writer.segment("N3", "PO BOX 0199")
        writer.segment("N4", "SPRINGFIELD", "IL", "627010199")
        writer.segment("PER", "BL", "PROVIDER SERVICES", "TE", PAYER_PHONE)
        writer.segment("N1", "PE", (bp.organization_name or bp.last_name or "")[:60], "XX", bp.npi)
        writer.segment("REF", "TJ", bp.tax_id)
        writer.segment("LX", "1")
        for result in results:
            claim = result.claim
            sign = result.sign
            last, first, member = _patient_name(claim)
            writer.segment(
                "CLP",
                claim.patient_control_number,
                result.status_code,
                format_amount(sign * result.charge_cents),
                format_amount(sign * result.paid_cents),
                format_amount(sign * result.patient_cents) if result.patient_cents else None,
                # A commercial claim (SBR09 CI/BL) has no CLP06 of its own: mutually defined.
                claim.subscriber.claim_filing_indicator
                if claim.subscriber.claim_filing_indicator in CLP06_CODES
                else "ZZ",
                result.payer_claim_number,
                claim.place_of_service or None,
                claim.frequency_code,
            )
            _cas_segments(writer, result.claim_adjustments, sign)
            writer.segment(
                "NM1", "QC", "1", last[:60], (first or "")[:35] or None, None, None, None, "MI", member
            )
            for line in result.lines:
                procedure = ("HC", line.line.procedure or "", *line.line.modifiers)
                writer.segment(
                    "SVC",
                    procedure,
                    format_amount(sign * line.line.charge_cents),
                    format_amount(sign * line.paid_cents),
                    None,
                    str(line.line.units.normalize()) if line.line.units != 1 else None,
                )
                service_date = line.line.service_date
                if service_date is not None:
                    writer.segment("DTM", "472", _d8(service_date))
                _cas_segments(writer, line.adjustments, sign)
                if line.line.line_control_number:
                    writer.segment("REF", "6R", line.line.line_control_number)
                if line.allowed_cents:
                    writer.segment("AMT", "B6", format_amount(sign * line.allowed_cents))
                for remark in line.remarks:
                    writer.segment("LQ", "HE", remark)
        # PLB: provider (the payee's NPI), fiscal period (the last day of the payment's year).
        for start in range(0, len(plb), 6):
            elements: list[object] = [bp.npi, f"{paid_on.year}1231"]
            for reason, reference, cents in plb[start : start + 6]:
                elements += [(reason, reference[:50]), format_amount(cents)]
            writer.segment("PLB", *elements)
        writer.end_transaction()
    writer.end_group()
    writer.end_interchange()
    return writer.getvalue()
