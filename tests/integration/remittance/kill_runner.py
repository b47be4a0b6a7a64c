"""Run one posting in a child process and SIGKILL it at a chosen checkpoint (the crash tests).

    python -m tests.integration.remittance.kill_runner DATABASE_URL EDI_FILE_ID POINT CHUNK

POINT is a checkpoint name of ``run_posting`` (``chunk``: after the first chunk of
claims, mid file; ``posted``: everything written, before the checks' caller returns;
``before_commit``; ``after_commit``) or ``none`` for a clean run. CHUNK sets the
engine's chunk size so a small file has several chunks.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def main(argv: list[str]) -> int:
    url, file_id, point, chunk = argv[0], int(argv[1]), argv[2], int(argv[3])
    from claims_server.db import make_engine, make_session_factory
    from claims_server.remittance import posting
    from claims_server.remittance.services import run_posting
    from claims_server.security.principal import acting_as, system_principal

    posting.CHUNK = chunk

    def checkpoint(name: str, info: dict[str, Any]) -> None:
        if name == point:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    with acting_as(system_principal("test:kill-runner")):
        report = run_posting(make_session_factory(make_engine(url)), file_id, checkpoint=checkpoint)
    print(report.status)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
