"""``python -m claims_server`` is the same as the ``claims-server`` command."""

from claims_server.cli import main

main()
