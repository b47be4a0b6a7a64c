"""Charge import (docs/charge-import.md): a charge CSV becomes claims through the API, all or nothing,
once per file; every refused row is named by its line, column and rule, and nothing is imported."""

from __future__ import annotations

import io
import time
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from claims_server.models import (
    AuditEvent,
    ChargeImport,
    Claim,
    ClaimDiagnosis,
    FeeScheduleEntry,
    Patient,
    Practice,
    ServiceLine,
)
from tests.charge_files import HEADER, charge_csv_bytes, charge_rows

CSV = "text/csv"
DOS = (date.today() - timedelta(days=5)).isoformat()


@pytest.fixture
def biller(api_client):
    return api_client("biller")


def _counts(session) -> dict[str, int]:
    session.rollback()
    return {
        "claims": session.scalar(select(func.count()).select_from(Claim)) or 0,
        "lines": session.scalar(select(func.count()).select_from(ServiceLine)) or 0,
        "imports": session.scalar(select(func.count()).select_from(ChargeImport)) or 0,
    }


def _post(client, body: bytes, query: str = "", **kwargs: Any):
    return client.post(f"/api/v1/charge-imports{query}", data=body, content_type=CSV, **kwargs)


def _file(session, claims: int = 3, **options: Any) -> tuple[list[list[str]], Any]:
    return charge_rows(session, claims=claims, **options)


def _refused(answer) -> list[tuple[int | None, str | None, str]]:
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == "application/problem+json"
    return [(e["line"], e["column"], e["rule"]) for e in answer.get_json()["errors"]]


# -- a good file -------------------------------------------------------------------------------------


def test_a_good_file_becomes_ready_claims_equal_to_the_csv_to_the_cent(biller, session, ids):
    rows, facts = _file(session, claims=8)
    answer = _post(biller, charge_csv_bytes(rows))
    assert answer.status_code == 201, answer.get_json()
    report = answer.get_json()
    assert report["status"] == "imported"
    assert (report["claims"], report["lines"], report["ready"], report["draft"]) == (8, facts.lines, 8, 0)
    cents = facts.total_charge_cents
    assert report["total_charge"] == f"{cents // 100}.{cents % 100:02d}"
    session.rollback()
    record = session.scalar(select(ChargeImport))
    assert record.public_id == report["import_id"] and record.total_charge_cents == cents
    assert (record.claim_count, record.line_count, record.row_count) == (8, facts.lines, facts.lines)
    claims = session.scalars(
        select(Claim).where(Claim.charge_import_id == record.id).order_by(Claim.id)
    ).all()
    assert [c.patient_control_number for c in claims] == facts.claim_refs
    assert {c.patient_control_number: c.total_charge_cents for c in claims} == facts.charge_by_ref
    assert all(c.state == "ready" and c.line_charges_cents() == c.total_charge_cents for c in claims)
    assert sorted(report["claim_ids"]) == sorted(c.public_id for c in claims)
    # The diagnoses were sealed like any encrypted column: the ORM opens them again.
    first = claims[0]
    assert [d.code for d in first.diagnoses] == ["E119", "I10"] and first.diagnoses[0].qualifier == "ABK"
    assert first.service_lines[0].diagnosis_pointers == "1,2" and first.service_lines[
        1
    ].pointer_positions == [1]
    assert first.service_lines[0].line_control_number == f"{first.patient_control_number}-1"
    events = dict(
        session.execute(
            select(AuditEvent.event_type, func.count())
            .where(AuditEvent.event_type.in_(["claim.create", "claim.ready", "charge_import.create"]))
            .group_by(AuditEvent.event_type)
        ).all()
    )
    assert events == {"claim.create": 8, "claim.ready": 8, "charge_import.create": 1}
    dx_events = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "claim_diagnoses.create")
    )
    assert dx_events == session.scalar(select(func.count()).select_from(ClaimDiagnosis))


def test_the_same_file_twice_imports_nothing_the_second_time(biller, session, ids):
    rows, _ = _file(session)
    body = charge_csv_bytes(rows)
    first = _post(biller, body)
    assert first.status_code == 201
    before = _counts(session)
    again = _post(biller, body)
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    assert again.get_json()["import_id"] == first.get_json()["import_id"]
    assert sorted(again.get_json()["claim_ids"]) == sorted(first.get_json()["claim_ids"])
    assert _counts(session) == before
    # Another file reusing a claim_ref is refused for that claim (and so imports nothing at all).
    reused, _ = _file(session, claims=2, start=1)
    extra, _ = _file(session, claims=1, start=500)
    problems = _refused(_post(biller, charge_csv_bytes([*reused, *extra[1:]])))
    assert (2, "claim_ref", "already_imported") in problems
    assert _counts(session) == before


def test_a_dry_run_previews_every_row_and_writes_nothing_but_its_audit_event(biller, session, ids):
    rows, facts = _file(session, claims=4)
    answer = _post(biller, charge_csv_bytes(rows), "?dry_run=true")
    assert answer.status_code == 200
    report = answer.get_json()
    assert report["status"] == "dry_run" and report["import_id"] is None and report["claim_ids"] == []
    assert [row["line"] for row in report["preview"]] == list(range(2, 2 + facts.lines))
    assert report["preview"][0]["claim_ref"] == facts.claim_refs[0]
    assert report["preview"][0]["claim_state"] == "ready"
    assert {f["severity"] for row in report["preview"] for f in row["findings"]} <= {"warning", "info"}
    assert _counts(session) == {"claims": 0, "lines": 0, "imports": 0}
    assert session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "charge_import.dry_run")
    )


def test_layout_freedoms_column_order_bom_crlf_quoted_delimiters_and_the_fee_schedule(biller, session, ids):
    rows, _ = _file(session, claims=4)  # claim 4 bills 99213 and 36415
    practice = session.scalar(select(Practice))
    session.add(
        FeeScheduleEntry(practice_id=practice.id, procedure_code="36415", modifier="", charge_cents=1_234)
    )
    session.commit()
    order = list(reversed(range(len(HEADER))))
    header = [name.upper().replace("_", " ") for name in HEADER]  # "CLAIM REF": case and spaces folded
    shuffled = [[header[i] for i in order]] + [[row[i] for i in order] for row in rows[1:]]
    charge = len(HEADER) - 1 - HEADER.index("charge")
    for row in shuffled[1:]:
        if row[len(HEADER) - 1 - HEADER.index("procedure")] == "36415":
            row[charge] = ""  # the fee schedule's charge
    body = b"\xef\xbb\xbf" + charge_csv_bytes(shuffled)  # a BOM, CRLF line ends, "Last, First" quoted
    assert b'"' in body and b"\r\n" in body
    answer = _post(biller, body, "?dry_run=true")
    assert answer.status_code == 200, answer.get_json()
    fee_rows = [r for r in answer.get_json()["preview"] if r["procedure"] == "36415"]
    assert fee_rows and all(r["charge"] == "12.34" and r["charge_from_fee_schedule"] for r in fee_rows)
    assert answer.get_json()["charges_from_fee_schedule"] == len(fee_rows)


def test_a_claim_with_scrub_errors_about_the_practices_records_is_imported_as_draft(biller, session, ids):
    rows, _ = _file(session, claims=1)
    patient = session.scalar(select(Patient).where(Patient.public_id == ids["patient"]))
    # The self-insured patient's address gone: the 837 needs it (REQUIRED_DATA), a record to fix.
    patient.address_line1 = None
    session.commit()
    row = [*rows[1]]
    row[0], row[1], row[2] = "DRAFT0001", patient.account_number, ""
    answer = _post(biller, charge_csv_bytes([rows[0], row]))
    assert answer.status_code == 201, answer.get_json()
    assert (answer.get_json()["ready"], answer.get_json()["draft"]) == (0, 1)
    session.rollback()
    claim = session.scalar(select(Claim).where(Claim.patient_control_number == "DRAFT0001"))
    assert claim.state == "draft" and any(f["severity"] == "error" for f in claim.scrub_findings)


# -- refused files ------------------------------------------------------------------------------------


def _with(rows: list[list[str]], line: int, column: str, value: str) -> list[list[str]]:
    """``rows`` with ``column`` of file line ``line`` (2 = first data row) set to ``value``."""
    out = [list(r) for r in rows]
    out[line - 1][HEADER.index(column)] = value
    return out


FUTURE = (date.today() + timedelta(days=30)).isoformat()


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("service_date", "2024-13-45", "invalid"),  # not a date
        ("service_date", "11/04/2024", "invalid"),  # not YYYY-MM-DD
        ("service_date", FUTURE, "DATE_OF_SERVICE"),  # a date in the future
        ("diagnoses", "E11", "DX_VALID"),  # a category header: not billable
        ("diagnoses", "Z99.999", "DX_VALID"),  # no such ICD-10-CM code
        ("diagnoses", "123", "icd"),  # not even the shape of one
        ("procedure", "Q9899", "LINE_PROCEDURE"),  # no such HCPCS code
        ("modifiers", "25:ZZ", "LINE_MODIFIER"),
        ("charge", "12.345", "invalid"),
        ("charge", "$12.00", "invalid"),
        ("units", "-1", "invalid"),
        ("place_of_service", "98", "CLAIM_POS"),  # no CMS code
        ("patient_account", "NO-SUCH-ACCOUNT", "exists"),
        ("patient_name", "Somebody, Else", "matches"),
        ("rendering_npi", "1234567890", "invalid"),  # a bad check digit
        ("claim_ref", "C" * 21, "invalid"),  # CLM01 is at most 20 characters
        ("claim_ref", "REF*1", "invalid"),  # an X12 delimiter
    ],
)
def test_a_bad_value_refuses_the_file_naming_line_column_and_rule(biller, session, ids, column, value, rule):
    rows, _ = _file(session, claims=3)  # claims of lines 2-3, 4 and 5-6
    bad = _with(rows, 4, column, value)
    answer = _post(biller, charge_csv_bytes(bad))
    problems = _refused(answer)
    assert (4, column, rule) in problems, problems
    text = answer.get_data(as_text=True)
    if column in ("patient_account", "patient_name"):
        assert value not in text  # PHI is named by its column, never quoted
    assert _counts(session) == {"claims": 0, "lines": 0, "imports": 0}


def test_x12_delimiters_in_free_text_are_refused_as_the_claim_json_refuses_them(biller, session, ids):
    rows, _ = _file(session, claims=2)
    header = [*rows[0], "description", "prior_authorization"]
    body = [header] + [[*r, "", ""] for r in rows[1:]]
    body[1][-2] = "KIT*2"  # SV101-7
    body[3][-1] = "AUTH~9"  # REF*G1, on the first row of the second claim
    body[2][-1] = "OTHER"  # claim level: a later row of a claim repeats the first's or stays empty
    problems = _refused(_post(biller, charge_csv_bytes(body)))
    assert (2, "description", "invalid") in problems
    assert (4, "prior_authorization", "invalid") in problems
    assert (3, "prior_authorization", "claim_level") in problems
    assert _counts(session)["claims"] == 0


def test_a_delimiter_inside_a_quoted_name_is_data_and_an_unquoted_one_breaks_its_row(biller, session, ids):
    rows, _ = _file(session, claims=2)
    quoted = charge_csv_bytes(rows)
    assert b'", ' in quoted or b',"' in quoted  # "Last, First" is quoted by the writer
    assert _post(biller, quoted, "?dry_run=true").status_code == 200
    broken = quoted.replace(b'"', b"")  # the comma inside the name now splits the field
    problems = _refused(_post(biller, broken))
    assert all(rule == "field_count" and column is None for _, column, rule in problems)
    assert [line for line, _, _ in problems] == list(range(2, len(rows) + 1))
    assert _counts(session)["claims"] == 0


def test_claim_level_columns_must_agree_on_every_row_of_a_claim(biller, session, ids):
    rows, _ = _file(session, claims=3)
    second = next(i for i, r in enumerate(rows[1:], start=2) if r[0] == rows[1][0] and i > 2)
    other = next(r[1] for r in rows[1:] if r[1] != rows[1][1])
    problems = _refused(_post(biller, charge_csv_bytes(_with(rows, second, "patient_account", other))))
    assert (second, "patient_account", "claim_level") in problems


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["claim_ref", "patient_account", "service_date", "proc_code", "diagnoses"], {(1, "proc_code", "unknown_column"), (1, "procedure", "missing_column")}),
        (["claim_ref", "service_date", "procedure", "diagnoses"], {(1, "patient_account", "missing_column")}),
        (["claim_ref", "claim_ref", "patient_id", "service_date", "procedure", "diagnoses"], {(1, "claim_ref", "duplicate_column")}),
        (["claim_ref", "", "patient_id", "service_date", "procedure", "diagnoses"], {(1, None, "header")}),
    ],
)  # fmt: skip
def test_wrong_columns_refuse_the_file_naming_them(biller, session, ids, header, expected):
    body = ",".join(header).encode() + b"\r\n" + b",".join([b"X"] * len(header)) + b"\r\n"
    assert expected <= set(_refused(_post(biller, body)))
    assert _counts(session)["imports"] == 0


def test_a_file_without_its_header_is_refused_without_quoting_its_first_row(biller, session, ids):
    rows, _ = _file(session, claims=2)
    answer = _post(biller, charge_csv_bytes(rows[1:]))
    assert _refused(answer) == [(1, None, "no_header")]
    assert rows[1][HEADER.index("patient_account")].lower() not in answer.get_data(as_text=True).lower()
    assert _counts(session)["claims"] == 0


def test_an_empty_file_a_header_alone_and_broken_quoting_are_refused(biller, session, ids):
    assert _refused(_post(biller, b"")) == [(None, None, "empty")]
    assert _refused(_post(biller, b"\xef\xbb\xbf\r\n\r\n")) == [(None, None, "empty")]
    assert _refused(_post(biller, ",".join(HEADER).encode() + b"\r\n")) == [(None, None, "no_rows")]
    rows, _ = _file(session, claims=1)
    broken = charge_csv_bytes(rows) + b'X1,"unterminated\r\n'  # the claim's rows are lines 2-3
    assert _refused(_post(biller, broken)) == [(4, None, "csv")]
    assert _counts(session)["claims"] == 0


def test_invalid_utf8_is_refused_naming_the_line_and_column(biller, session, ids):
    rows, _ = _file(session, claims=2)
    body = charge_csv_bytes(_with(rows, 4, "patient_name", "NAME-X")).replace(b"NAME-X", b"NAME\xffX")
    problems = _refused(_post(biller, body))
    assert problems == [(4, "patient_name", "utf8")]
    assert _counts(session)["claims"] == 0


def test_one_bad_row_among_good_ones_imports_nothing_and_every_problem_is_listed(biller, session, ids):
    rows, _ = _file(session, claims=6)
    bad = _with(_with(rows, 2, "procedure", "Q9899"), len(rows), "charge", "ten")
    problems = _refused(_post(biller, charge_csv_bytes(bad)))
    assert {(2, "procedure"), (len(rows), "charge")} <= {(line, column) for line, column, _ in problems}
    assert _counts(session) == {"claims": 0, "lines": 0, "imports": 0}


def test_no_charge_and_no_fee_is_refused_naming_the_code(biller, session, ids):
    rows, _ = _file(session, claims=1)
    answer = _post(biller, charge_csv_bytes(_with(rows, 2, "charge", "")))
    assert _refused(answer) == [(2, "charge", "fee_schedule")]
    assert "no charge for 99214" in answer.get_json()["errors"][0]["message"]  # a code may be quoted


# -- size ----------------------------------------------------------------------------------------------


class _Endless(io.RawIOBase):
    """``size`` bytes of charge rows made up as they are read (never held in memory)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.served = 0
        self.position = 0
        self.row = (
            ",".join(["R1", "A", "", "", "11", DOS, "99213", "", "1", "1.00", "I10"]) + "\r\n"
        ).encode()
        self.pending = ",".join(HEADER).encode() + b"\r\n"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        # The test client measures the body by seeking to its end and back: nothing is read.
        assert self.served == 0
        self.position = self.size + offset if whence == 2 else offset
        return self.position

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.served)
        if n <= 0:
            return 0
        while len(self.pending) < n:
            self.pending += self.row * 512
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        self.served += n
        return n


def _chunked_post(app, client, stream: _Endless) -> tuple[int, bytes]:
    """POST ``stream`` as a chunked body (no Content-Length), as a server hands it to the app."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(
        path="/api/v1/charge-imports", method="POST", data=b"", content_type=CSV
    ).get_environ()
    environ.update(client.environ_base)
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), b"".join(body)


def test_a_200_mb_file_is_a_413_on_its_header_and_a_chunked_one_stops_at_the_limit(app, biller, session, ids):
    huge = 200 * 1024 * 1024
    declared = _Endless(huge)
    start = time.perf_counter()
    answer = biller.post("/api/v1/charge-imports", input_stream=declared, content_type=CSV)
    assert answer.status_code == 413 and answer.headers["Content-Type"] == "application/problem+json"
    assert declared.served == 0  # refused on the Content-Length header alone
    chunked = _Endless(huge)
    status, body = _chunked_post(app, biller, chunked)
    assert status == 413, body[:300]
    limit = app.extensions["claims_server"].settings.CHARGE_IMPORT_MAX_BYTES
    assert chunked.served <= limit + 64 * 1024  # read up to the limit, never the whole file
    assert time.perf_counter() - start < 30
    assert _counts(session)["claims"] == 0


def test_other_media_types_are_refused(biller, ids):
    answer = biller.post("/api/v1/charge-imports", data=b"a,b", content_type="text/plain")
    assert answer.status_code == 415
    answer = biller.post(
        "/api/v1/charge-imports", data=b"--x\r\n", content_type="multipart/form-data; boundary=x"
    )
    assert answer.status_code == 415


# -- reading imports, roles and integrations ---------------------------------------------------------------


def test_list_and_read_imports_with_their_claims_and_states(biller, session, ids):
    rows, facts = _file(session, claims=3)
    created = _post(biller, charge_csv_bytes(rows)).get_json()
    listing = biller.get("/api/v1/charge-imports")
    assert listing.status_code == 200
    assert [i["id"] for i in listing.get_json()["items"]] == [created["import_id"]]
    one = biller.get(f"/api/v1/charge-imports/{created['import_id']}").get_json()
    assert (one["claims"], one["lines"], one["rows"]) == (3, facts.lines, facts.lines)
    assert one["states_now"] == {"ready": 3}
    assert [c["patient_control_number"] for c in one["created_claims"]] == facts.claim_refs
    assert biller.get("/api/v1/charge-imports/" + "0" * 32).status_code == 404


def test_auditors_read_imports_but_do_not_import(api_client, session, ids):
    rows, _ = _file(session, claims=1)
    auditor = api_client("auditor")
    assert _post(auditor, charge_csv_bytes(rows)).status_code == 403
    assert auditor.get("/api/v1/charge-imports").status_code == 200


def test_an_integration_imports_for_its_own_patients_and_sees_only_its_own_imports(api_client, session, ids):
    rows, _ = _file(session, claims=1)
    ehr = api_client("integration", scopes=["claims:write"])
    # The demo patients were created by staff: to an integration they do not exist.
    problems = _refused(_post(ehr, charge_csv_bytes(rows)))
    assert (2, "patient_account", "exists") in problems
    staff = api_client("biller")
    created = _post(staff, charge_csv_bytes(rows)).get_json()
    assert ehr.get(f"/api/v1/charge-imports/{created['import_id']}").status_code == 404
    assert ehr.get("/api/v1/charge-imports").get_json()["items"] == []


def test_every_column_reaches_the_claim_it_names(biller, session, ids):
    """patient_id, coverage_id, referring and facility NPIs, prior authorization, ready=no, a second
    line's own rendering provider and place of service, modifiers, units, NDC: each lands where the
    claim JSON would put it."""
    from claims_server.models import Provider

    providers = session.scalars(select(Provider).order_by(Provider.id)).all()
    rendering, other, referring = (
        ids["rendering_npi"],
        next(p.npi for p in providers if p.is_rendering and p.npi != ids["rendering_npi"]),
        next(p.npi for p in providers if p.is_referring),
    )
    header = [
        "claim_ref", "patient_id", "coverage_id", "referring_npi", "prior_authorization", "ready",
        "rendering_npi", "place_of_service", "service_date", "procedure", "modifiers", "units",
        "charge", "diagnoses", "ndc", "ndc_quantity", "ndc_unit",
    ]  # fmt: skip
    first = ["FULL0001", ids["patient"], ids["coverage"], referring, "PA-77", "no", rendering, "11", DOS]
    rows = [
        header,
        [*first, "99214", "25", "1", "175.00", "E11.9:I10", "", "", ""],
        ["FULL0001", "", "", "", "", "", other, "22", DOS, "J1100", "", "2", "20.00", "E11.9", "63323016501", "2", "ML"],
    ]  # fmt: skip
    answer = _post(biller, charge_csv_bytes(rows))
    assert answer.status_code == 201, answer.get_json()
    assert (answer.get_json()["ready"], answer.get_json()["draft"]) == (0, 1)  # ready=no
    session.rollback()
    claim = session.scalar(select(Claim).where(Claim.patient_control_number == "FULL0001"))
    assert claim.state == "draft" and claim.patient.public_id == ids["patient"]
    assert claim.coverage.public_id == ids["coverage"] and claim.prior_authorization == "PA-77"
    assert claim.referring_provider.npi == referring and claim.rendering_provider.npi == rendering
    assert claim.place_of_service == "11" and [d.code for d in claim.diagnoses] == ["E119", "I10"]
    one, two = claim.service_lines
    assert (one.modifiers, one.pointer_positions, one.place_of_service, one.rendering_provider_id) == (
        ["25"],
        [1, 2],
        None,
        None,
    )
    assert (two.procedure_code, two.units, two.charge_cents, two.pointer_positions) == (
        "J1100",
        "2",
        2000,
        [1],
    )
    assert (two.place_of_service, two.rendering_provider.npi) == ("22", other)
    assert (two.ndc, two.drug_quantity, two.drug_unit) == ("63323016501", "2", "ML")


def test_an_empty_charge_is_the_fee_times_the_units_and_minutes_need_a_charge(biller, session, ids):
    practice = session.scalar(select(Practice))
    session.add(
        FeeScheduleEntry(practice_id=practice.id, procedure_code="36415", modifier="", charge_cents=1_250)
    )
    session.commit()
    header = ["claim_ref", "patient_id", "rendering_npi", "service_date", "procedure", "units", "unit_basis", "charge", "diagnoses"]  # fmt: skip
    first = ["UNITS001", ids["patient"], ids["rendering_npi"], DOS]
    rows = [
        header,
        [*first, "99213", "1", "", "125.00", "I10"],
        ["UNITS001", "", "", DOS, "36415", "3", "", "", "I10"],
    ]
    answer = _post(biller, charge_csv_bytes(rows))
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["total_charge"] == "162.50"  # 125.00 + 3 x 12.50
    session.rollback()
    claim = session.scalar(select(Claim).where(Claim.patient_control_number == "UNITS001"))
    assert [(line.units, line.charge_cents) for line in claim.service_lines] == [("1", 12500), ("3", 3750)]
    minutes = [
        header,
        ["UNITS002", ids["patient"], ids["rendering_npi"], DOS, "36415", "30", "MJ", "", "I10"],
    ]
    refused = _post(biller, charge_csv_bytes(minutes))
    assert _refused(refused) == [(2, "charge", "fee_schedule")]
    assert "anesthesia minutes" in refused.get_json()["errors"][0]["message"]
