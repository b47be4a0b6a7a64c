"""JSON logs that carry no PHI.

Records hold the request id, the method, the route pattern (never the query string)
and the status. Free text from users or files never goes into a log message; code
that logs names fields and ids, not values.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and the frames' locations, not the exception text or
            # source lines: messages of driver errors can quote bound parameters (PHI).
            payload["exception"] = record.exc_info[0].__name__
            payload["traceback"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(record.exc_info[2])
            ]
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_claims_server", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._claims_server = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Werkzeug's access log prints full URLs with query strings; we log requests ourselves.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Celery's trace logger prints task return values; results may one day hold PHI.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
