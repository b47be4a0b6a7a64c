"""The HTTPS clearinghouse transport against a real HTTPS file API on 127.0.0.1.

The same send + receive path the SFTP tests run (batch → upload → simulator → poll →
999 + 277CA → 835), then the failures: wrong credentials, 5xx then success, a lost
answer retried without a second copy, timeouts, an answer too large, an untrusted
certificate, and route settings checked with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from claims_server.clearinghouse import services as ch
from claims_server.clearinghouse.http_transport import HttpSettings, HttpTransport, parse_http_settings
from claims_server.clearinghouse.transport import TransportConfigError, TransportError
from claims_server.models import ClearinghouseRoute, EdiFile, TransportKind
from claims_server.models.submissions import BatchState
from claims_server.submission.services import build_batches
from tests.integration.submission.http_clearinghouse import (
    PASSWORD,
    TOKEN,
    HttpClearinghouse,
    running_http_clearinghouse,
)
from tests.integration.submission.sftp_server import interchange_numbers
from tests.integration.submission.test_pipeline import _run_path, _transport

SECRETS = (TOKEN, PASSWORD)


@pytest.fixture
def http_clearinghouse(tmp_path, monkeypatch) -> Iterator[HttpClearinghouse]:
    monkeypatch.setenv("CH_HTTP_TOKEN", TOKEN)
    monkeypatch.setenv("CH_HTTP_PASSWORD", PASSWORD)
    with running_http_clearinghouse(tmp_path / "https-clearinghouse") as peer:
        yield peer


@pytest.fixture
def http_route(session, route, http_clearinghouse) -> ClearinghouseRoute:
    route.transport = TransportKind.HTTP
    route.settings = http_clearinghouse.route_settings()
    session.commit()
    return route


def _one_batch(session, make_claims) -> int:
    make_claims(2)
    batching = build_batches(session)
    session.commit()
    (batch_id,) = batching.batch_ids
    return batch_id


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_whole_path_over_a_real_https_clearinghouse(
    session, factory, http_route, http_clearinghouse, make_claims, ids, tmp_path
):
    peer = http_clearinghouse
    batch = _run_path(
        session, factory, http_route, make_claims, ids, _transport(tmp_path), peer.outbound, peer.inbound
    )
    sent = session.scalars(select(EdiFile).where(EdiFile.batch_id == batch.id)).all()
    assert interchange_numbers(peer.outbound) == [bytes(f.content).decode()[90:99] for f in sent]
    assert not list(peer.inbound.iterdir())  # polled files are deleted over the API once stored
    (upload,) = [headers for method, _, headers in peer.requests if method == "POST"]
    assert upload["Idempotency-Key"] == hashlib.sha256(bytes(sent[0].content)).hexdigest()
    assert peer.calls("DELETE", "/inbound") == 3  # 999, 277CA, 835


def test_basic_authentication(session, factory, http_route, http_clearinghouse, make_claims, tmp_path):
    http_route.settings = http_clearinghouse.route_settings(auth="basic")
    session.commit()
    batch_id = _one_batch(session, make_claims)
    assert ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path)).state == "sent"
    assert len(interchange_numbers(http_clearinghouse.outbound)) == 1


def test_wrong_credentials_fail_at_once_naming_the_route_and_no_secret(
    session, factory, http_route, http_clearinghouse, make_claims, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv("CH_HTTP_TOKEN", "not-the-token-" + TOKEN[::-1])
    batch_id = _one_batch(session, make_claims)
    with caplog.at_level(logging.DEBUG), pytest.raises(TransportError) as caught:
        ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    message = str(caught.value)
    assert repr(http_route.name) in message and "HTTP 401" in message and "credentials" in message
    assert http_clearinghouse.calls("POST") + http_clearinghouse.calls("GET") == 1  # a 401 is not retried
    session.expire_all()
    batch = session.get(ch.SubmissionBatch, batch_id)
    assert batch.state is BatchState.FAILED and "HTTP 401" in batch.last_error
    _no_secret_in(message, batch.last_error, caplog.text, "not-the-token-" + TOKEN[::-1])
    assert "not-the-token" not in message + batch.last_error + caplog.text


def test_server_errors_are_retried_with_backoff_then_succeed(
    session, factory, http_route, http_clearinghouse, make_claims, tmp_path, caplog
):
    batch_id = _one_batch(session, make_claims)
    http_clearinghouse.fail_next = [404, 503, 502]  # the status check (404: not there), then two 5xx
    with caplog.at_level(logging.WARNING, logger="claims_server.clearinghouse.http_transport"):
        result = ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    assert result.state == "sent"
    assert (
        http_clearinghouse.calls("POST") == 3 and len(interchange_numbers(http_clearinghouse.outbound)) == 1
    )
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and "HTTP 503" in retries[0] and "attempt 1 of 3" in retries[0]
    _no_secret_in(caplog.text)


def test_persistent_server_errors_give_up_after_max_attempts(
    session, factory, http_route, http_clearinghouse, make_claims, tmp_path
):
    batch_id = _one_batch(session, make_claims)
    http_clearinghouse.fail_next = [404, 500, 500, 500]
    with pytest.raises(TransportError, match=r"HTTP 500 .*\(after 3 attempts\)"):
        ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    assert http_clearinghouse.calls("POST") == 3 and interchange_numbers(http_clearinghouse.outbound) == []
    session.expire_all()
    assert session.get(ch.SubmissionBatch, batch_id).state is BatchState.FAILED


def test_a_lost_answer_is_retried_without_a_second_copy(
    session, factory, http_route, http_clearinghouse, make_claims, tmp_path
):
    batch_id = _one_batch(session, make_claims)
    http_clearinghouse.fail_after_store = 1  # stored, then a 500: the client cannot know
    assert ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path)).state == "sent"
    assert http_clearinghouse.calls("POST") == 2  # retried with the same Idempotency-Key...
    keys = {h["Idempotency-Key"] for m, _, h in http_clearinghouse.requests if m == "POST"}
    assert len(keys) == 1 and len(http_clearinghouse.uploads_by_key) == 1
    assert len(interchange_numbers(http_clearinghouse.outbound)) == 1  # ...so filed once


def test_an_upload_already_there_is_not_sent_again(
    session, factory, http_route, http_clearinghouse, make_claims, tmp_path
):
    batch_id = _one_batch(session, make_claims)
    assert ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path)).state == "sent"
    session.expire_all()
    batch = session.get(ch.SubmissionBatch, batch_id)
    batch.state = BatchState.FAILED  # as if the worker died after the upload, before marking it sent
    session.commit()
    assert ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path)).state == "sent"
    assert http_clearinghouse.calls("POST") == 1  # the second send found it by GET and stopped


def test_a_server_that_does_not_answer_times_out(
    session, factory, http_route, http_clearinghouse, make_claims, tmp_path
):
    http_route.settings = http_clearinghouse.route_settings(timeout_seconds=0.3, max_attempts=2)
    session.commit()
    batch_id = _one_batch(session, make_claims)
    http_clearinghouse.delay_seconds = 1.5
    with pytest.raises(TransportError, match=r"timed out \(after 2 attempts\)") as caught:
        ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    assert repr(http_route.name) in str(caught.value)
    session.expire_all()
    assert session.get(ch.SubmissionBatch, batch_id).state is BatchState.FAILED


@pytest.mark.parametrize("stream", [False, True], ids=["content-length", "streamed"])
def test_an_answer_larger_than_allowed_is_refused_and_the_file_kept(
    session, factory, http_route, http_clearinghouse, tmp_path, stream
):
    http_route.settings = http_clearinghouse.route_settings(max_response_bytes=64 * 1024)
    session.commit()
    huge = http_clearinghouse.inbound / "835-huge.x12"
    huge.write_bytes(b"ISA" + b"*" * (1024 * 1024))
    http_clearinghouse.stream_without_length = stream
    with pytest.raises(TransportError, match="max_response_bytes") as caught:
        ch.poll_inbox(factory, http_route.id, transport_factory=_transport(tmp_path))
    assert "835-huge.x12" in str(caught.value)
    assert huge.exists() and http_clearinghouse.calls("DELETE") == 0  # nothing stored, nothing removed
    assert session.scalar(select(EdiFile).where(EdiFile.route_id == http_route.id)) is None
    assert http_clearinghouse.calls("GET", "/inbound/") == 1  # refused, not retried


def test_an_untrusted_certificate_is_refused(
    session, factory, http_route, http_clearinghouse, make_claims, tmp_path
):
    settings = http_clearinghouse.route_settings()
    del settings["ca_bundle"]  # the system store does not know the test CA
    http_route.settings = settings
    session.commit()
    batch_id = _one_batch(session, make_claims)
    with pytest.raises(TransportError, match="TLS certificate not trusted"):
        ch.send_batch(factory, batch_id, transport_factory=_transport(tmp_path))
    assert http_clearinghouse.requests == [] and interchange_numbers(http_clearinghouse.outbound) == []


@pytest.mark.parametrize(
    "base_url",
    [
        "https://ch.example/api",
        "https://203.0.113.7/api",
        "https://[2001:db8::1]/api",
        "https://127.0.0.1.ch.example/api",  # a name that only starts like a loopback address
    ],
)
def test_unverified_tls_to_another_host_is_refused_pointing_to_ca_bundle(
    session, api_client, http_route, tmp_path, base_url
):
    settings = {"base_url": base_url, "auth": "bearer", "token_env": "CH_HTTP_TOKEN", "verify_tls": False}
    with pytest.raises(TransportConfigError) as parsed:
        parse_http_settings(settings)
    assert "verify_tls: false is allowed only for a test peer on 127.0.0.1" in str(parsed.value)
    assert "ca_bundle" in str(parsed.value)
    # A route stored before this rule is refused when its transport opens, before any request.
    http_route.settings = settings
    session.commit()
    with pytest.raises(TransportConfigError, match="ca_bundle"):
        ch.route_transport(http_route, tmp_path)
    # Settings that bypass the parser meet the same refusal in the adapter itself.
    with pytest.raises(TransportConfigError, match="ca_bundle"):
        HttpTransport("direct", HttpSettings(base_url=base_url, auth="bearer", verify_tls=False), "Bearer x")
    # And the routes API will not save it.
    refused = api_client("admin").patch(
        f"/api/v1/clearinghouse-routes/{http_route.public_id}", json={"settings": settings}
    )
    assert refused.status_code == 422 and "ca_bundle" in refused.get_json()["detail"]


def test_unverified_tls_to_a_loopback_test_peer_works_but_never_in_production(
    session, http_route, http_clearinghouse, monkeypatch, tmp_path, caplog
):
    settings = http_clearinghouse.route_settings(verify_tls=False)
    del settings["ca_bundle"]  # the system store does not know the test CA: only verify_tls false lets it in
    http_route.settings = settings
    session.commit()
    with caplog.at_level(logging.WARNING, logger="claims_server.clearinghouse.http_transport"):
        transport = ch.route_transport(http_route, tmp_path)
    assert "TLS certificate verification is switched off" in caplog.text
    (http_clearinghouse.inbound / "999-waiting.x12").write_bytes(b"ISA")
    assert transport.list_inbox() == ["999-waiting.x12"]

    monkeypatch.setenv("CLAIMS_ENV", "production")
    requests_before = len(http_clearinghouse.requests)
    with pytest.raises(TransportConfigError) as caught:
        ch.route_transport(http_route, tmp_path)
    assert "must be true when CLAIMS_ENV=production" in str(caught.value) and "ca_bundle" in str(caught.value)
    with pytest.raises(TransportConfigError, match="CLAIMS_ENV=production"):
        parse_http_settings(settings)
    assert len(http_clearinghouse.requests) == requests_before  # refused before connecting
    # Verified TLS with the route's CA is what production uses, and it still opens.
    http_route.settings = http_clearinghouse.route_settings()
    session.commit()
    assert ch.route_transport(http_route, tmp_path).list_inbox() == ["999-waiting.x12"]


def test_an_unset_secret_variable_is_a_configuration_error(http_route, monkeypatch, tmp_path):
    monkeypatch.delenv("CH_HTTP_TOKEN")
    with pytest.raises(TransportConfigError) as caught:
        ch.route_transport(http_route, tmp_path)
    assert str(caught.value) == (
        f"route {http_route.name!r}: the environment variable CH_HTTP_TOKEN (token_env) is not set"
    )


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"base_url": "http://ch.example/api", "auth": "bearer", "token_env": "T"},
            "base_url: must use https",
        ),
        (
            {"base_url": "https://u:p@ch.example", "auth": "bearer", "token_env": "T"},
            "must not carry credentials",
        ),
        ({"base_url": "https://ch.example", "auth": "bearer"}, "token_env: bearer auth needs"),
        ({"base_url": "https://ch.example", "auth": "basic", "username": "u"}, "username and password_env"),
        ({"base_url": "https://ch.example", "auth": "oauth"}, "auth: must be bearer"),
        (
            {"base_url": "https://ch.example", "auth": "bearer", "token_env": "T", "tls": 1},
            "unknown settings tls",
        ),
        (
            {"base_url": "https://ch.example", "auth": "bearer", "token_env": "T", "inbox_path": "../etc"},
            "inbox_path: must be a plain path",
        ),
        (
            {"base_url": "https://ch.example", "auth": "bearer", "token_env": "T", "timeout_seconds": "30"},
            "timeout_seconds: must be a number",
        ),
    ],
)
def test_settings_are_checked_with_a_clear_message(settings, problem):
    with pytest.raises(TransportConfigError, match="the route's http settings") as caught:
        parse_http_settings(settings)
    assert problem in str(caught.value)


def test_plain_http_is_allowed_to_localhost_only():
    config = parse_http_settings(
        {"base_url": "http://127.0.0.1:8080/ch/", "auth": "bearer", "token_env": "T"}
    )
    assert config.base_url == "http://127.0.0.1:8080/ch" and config.verify_tls


def test_the_routes_api_refuses_bad_http_settings_and_keeps_good_ones(api_client, http_clearinghouse):
    client = api_client("admin")
    route = {
        "name": "HTTPS CLEARINGHOUSE",
        "transport": "http",
        "settings": {"base_url": "http://ch.example/api", "auth": "bearer"},
        "sender_id": "SUBMIT01",
        "receiver_id": "CLEAR01",
        "application_sender_code": "SUBMIT01",
        "application_receiver_code": "CLEAR01",
    }
    refused = client.post("/api/v1/clearinghouse-routes", json=route)
    assert refused.status_code == 422 and refused.content_type == "application/problem+json"
    body = refused.get_json()
    assert "base_url: must use https" in body["detail"] and "token_env" in body["detail"]
    assert body["errors"][0]["field"] == "settings"
    listed = client.get("/api/v1/clearinghouse-routes").get_json()["items"]
    assert route["name"] not in [r["name"] for r in listed]  # nothing was created
    route["settings"] = http_clearinghouse.route_settings()
    created = client.post("/api/v1/clearinghouse-routes", json=route)
    assert created.status_code == 201, created.get_json()
    patched = client.patch(
        f"/api/v1/clearinghouse-routes/{created.get_json()['id']}",
        json={"settings": {**route["settings"], "max_attempts": 0}},
    )
    assert patched.status_code == 422 and "max_attempts" in patched.get_json()["detail"]
    again = client.get(f"/api/v1/clearinghouse-routes/{created.get_json()['id']}").get_json()
    assert again["settings"]["max_attempts"] == 3  # the refused change left the route as it was


def test_cli_check_and_poll_name_the_route_and_no_secret(
    http_route, http_clearinghouse, monkeypatch, database_url, tmp_path
):
    from click.testing import CliRunner

    from claims_server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    (http_clearinghouse.inbound / "999-waiting.x12").write_bytes(b"ISA")
    runner = CliRunner()
    checked = runner.invoke(main, ["clearinghouse", "check", str(http_route.id)])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output) == {"route_id": http_route.id, "transport": "http", "inbox_files": 1}
    monkeypatch.setenv("CH_HTTP_TOKEN", "wrong-" + TOKEN)
    for args in (["check", str(http_route.id)], ["poll", "--route", str(http_route.id)]):
        result = runner.invoke(main, ["clearinghouse", *args])
        assert result.exit_code == 1, result.output
        assert "HTTP 401" in result.output and http_route.name in result.output
        _no_secret_in(result.output)
    assert (http_clearinghouse.inbound / "999-waiting.x12").exists()
