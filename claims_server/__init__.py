"""claims-server: the Flask application and everything with state.

The package import stays light (no Flask) so that ``claims-server edi ...`` starts fast;
``create_app`` is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from claims_server.app import create_app as create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from claims_server.app import create_app

        return create_app
    raise AttributeError(name)
