"""What every ``claims-server`` command group shares: errors as one line, never a traceback.

- ``config_errors_are_one_line``: a configuration error prints the one line naming the
  setting (``ConfigError``'s message) and exits 2.
- ``problems_are_json``: a refused input (an ``ApiError`` raised by a service) prints its
  problem (status, detail, errors naming field and rule) as JSON on stderr and exits 2, or 1
  when what was asked for does not exist (404).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click


def config_errors_are_one_line(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from claims_server.config import ConfigError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)

    return wrapper


def problems_are_json(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from claims_server.errors import ApiError

        try:
            return func(*args, **kwargs)
        except ApiError as exc:
            problem = {"status": exc.status, "detail": exc.detail, "errors": exc.errors}
            click.echo(json.dumps(problem, default=str), err=True)
            sys.exit(1 if exc.status == 404 else 2)

    return wrapper
