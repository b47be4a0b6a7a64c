"""Alembic migrations: the only way the schema changes.

Run them through ``claims_server.migrate`` (``upgrade(url)``, ``downgrade(url)``,
``current(url)``); the script location is this package's folder, so they work from
any working directory and from an installed wheel.
"""
