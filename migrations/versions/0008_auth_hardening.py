"""Auth hardening: TOTP replay refused, integration ownership recorded.

- ``users.totp_last_step``: the RFC 6238 time step of the last accepted TOTP code; a code
  of that step or an older one is refused (``security.authn.use_totp``), so a code read
  over someone's shoulder cannot be replayed within its 90-second window.
- ``owner_integration`` on ``patients``, ``claims`` and ``edi_files``: the integration
  (``api_tokens.integration_name``) whose token created the row, stamped on flush
  (``security.ownership``). Everything an integration may reach is owned through these
  (coverages through their patient, remittances through their 835 file, ...). Rows that
  exist before this revision were created by staff or the system: NULL, so no
  integration owns them, which is what the documented rule always said.
- ``api_tokens.scopes``: the ``*`` wildcard is gone (a fixed list of scopes now); a token
  that held it is given every scope of that list as it stands at this revision, so it
  keeps what it could do and the grant is written out where ``tokens list`` shows it.

Revision ID: 0008_auth_hardening
Revises: 0007_phi_at_rest
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_auth_hardening"
down_revision: str | None = "0007_phi_at_rest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNED = ("patients", "claims", "edi_files")
#: ``claims_server.security.policy.TOKEN_SCOPES`` at this revision (a revision imports no app code).
SCOPES_0008 = (
    "auth:read",
    "claims:write",
    "edi:write",
    "fhir:write",
    "patients:write",
    "payers:read",
    "practice:read",
    "remittances:read",
    "remittances:write",
)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner_integration", sa.String(length=100), nullable=True))
        op.create_index(op.f(f"ix_{table}_owner_integration"), table, ["owner_integration"], unique=False)
    tokens = sa.table("api_tokens", sa.column("id", sa.BigInteger()), sa.column("scopes", JSON))
    conn = op.get_bind()
    for token_id, scopes in conn.execute(sa.select(tokens.c.id, tokens.c.scopes)).all():
        if scopes and "*" in scopes:
            granted = sorted((set(scopes) - {"*"}) | set(SCOPES_0008))
            conn.execute(tokens.update().where(tokens.c.id == token_id).values(scopes=granted))


def downgrade() -> None:
    for table in reversed(OWNED):
        op.drop_index(op.f(f"ix_{table}_owner_integration"), table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner_integration")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
