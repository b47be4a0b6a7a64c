"""EDI files at rest outside the database: the folder adapter leaves no clear staging copy."""

from __future__ import annotations

import stat

import pytest

from claims_server.clearinghouse.transport import FolderTransport, TransportError

X12 = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:~"


def test_an_uploaded_file_is_owner_only_and_leaves_no_staging_copy(tmp_path):
    transport = FolderTransport(tmp_path / "outbox", tmp_path / "inbox")
    receipt = transport.upload("batch.x12", X12)
    assert receipt.name == "batch.x12"
    files = list((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == ["batch.x12"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_a_failed_upload_removes_its_staging_copy(tmp_path):
    outbox = tmp_path / "outbox"
    (outbox / "batch.x12").mkdir(parents=True)  # the final rename cannot replace a directory
    transport = FolderTransport(outbox, tmp_path / "inbox")
    with pytest.raises(TransportError) as info:
        transport.upload("batch.x12", X12)
    assert "batch.x12" in str(info.value) and "SENDER" not in str(info.value)
    assert sorted(p.name for p in outbox.iterdir()) == ["batch.x12"]
    assert (outbox / "batch.x12").is_dir()
