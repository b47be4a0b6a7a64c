"""``POST /api/v1/edi/x12``: our 999 (or TA1) comes back synchronously."""

from __future__ import annotations

from sqlalchemy import select

from claims_server.models import EdiFile, FileDirection
from edi.x999 import parse_999


def _good_837(session, make_claims) -> bytes:
    from claims_server.submission.services import build_batches

    make_claims(2)
    batch_id = build_batches(session).batch_ids[0]
    session.commit()
    return bytes(session.scalar(select(EdiFile).where(EdiFile.batch_id == batch_id)).content)


def _post(client, body: bytes, content_type: str = "application/edi-x12"):
    return client.post("/api/v1/edi/x12", data=body, headers={"Content-Type": content_type})


def test_good_file_gets_an_accepting_999(api_client, session, make_claims):
    client = api_client("integration", scopes=["edi:write"])
    body = _good_837(session, make_claims)
    response = _post(client, body)
    assert response.status_code == 200 and response.mimetype == "application/edi-x12"
    assert response.headers["X-Acknowledgment"] == "999" and response.headers["X-Accepted"] == "true"
    ack = parse_999(response.data)
    assert [ts.status for a in ack.acks for ts in a.transaction_sets] == ["A"]
    again = _post(client, body)  # the same bytes: the same answer, stored once
    assert again.data == response.data
    stored = session.scalars(select(EdiFile).where(EdiFile.direction == FileDirection.INBOUND)).all()
    assert len(stored) == 1


def test_bad_transaction_set_is_rejected_alone(api_client, session, make_claims):
    client = api_client("biller")
    text = _good_837(session, make_claims).decode()
    # Two transaction sets in one group: the second with a CLM02 that does not balance.
    head, _, rest = text.partition("ST*837*")
    body_st = "ST*837*" + rest.rsplit("GE*", 1)[0]
    second = body_st
    st02 = second.split("*")[2]
    clm = second.index("CLM*")
    fields = second[clm:].split("*", 3)
    broken = second[:clm] + "*".join([fields[0], fields[1], "1.00", fields[3]])
    broken = broken.replace(f"ST*837*{st02}*", "ST*837*9999*")
    broken = broken.replace(f"*{st02}~", "*9999~")
    trailer = rest.rsplit("GE*", 1)[1]
    group_number = trailer.split("*")[1].split("~")[0]
    document = head + body_st + broken + f"GE*2*{group_number}~" + trailer.split("~", 1)[1]
    response = _post(client, document.encode(), "text/plain")
    assert response.status_code == 200, response.get_json()
    verdicts = {
        ts.control_number: ts.status for a in parse_999(response.data).acks for ts in a.transaction_sets
    }
    assert verdicts == {st02: "A", "9999": "R"}
    assert response.headers["X-Accepted"] == "false"


def test_broken_envelope_gets_a_ta1(api_client, session, make_claims):
    client = api_client("biller")
    text = _good_837(session, make_claims).decode()
    isa13 = text[90:99]
    broken = text[: text.rindex("IEA*")] + "IEA*1*000000999~"
    assert isa13 != "000000999"
    response = _post(client, broken.encode())
    assert response.status_code == 200 and response.headers["X-Acknowledgment"] == "TA1"
    assert f"TA1*{isa13}*" in response.data.decode() and "*R*" in response.data.decode()


def test_garbage_gets_a_problem_with_the_reason(api_client):
    client = api_client("biller")
    response = _post(client, b"hello, this is not X12")
    assert response.status_code in (400, 422)
    assert response.mimetype == "application/problem+json"
    assert "ISA" in response.get_json()["detail"]
    truncated = _post(client, b"ISA*00*short~")
    assert truncated.status_code == 400
    assert truncated.get_json()["detail"].startswith("the file cannot be acknowledged")


def test_huge_file_is_refused_before_buffering(app, api_client):
    client = api_client("biller")
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/api/v1/edi/x12",
        data=b"ISA" + b"*" * (limit + 10),
        headers={"Content-Type": "application/edi-x12"},
    )
    assert response.status_code == 413


def test_roles_without_the_policy_entry_are_refused(api_client):
    client = api_client("integration", scopes=["claims:write"])
    assert _post(client, b"ISA*").status_code == 403
