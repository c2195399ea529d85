"""webhook signing secrets sealed with the operator's key

Revision ID: 0004_webhook_secrets
Revises: 0003_auth
Create Date: 2026-12-01 12:00:00

`webhook_endpoints.secret` held each endpoint's `whsec_` signing secret in
plaintext, so a database dump alone could sign events. It becomes
`secret_sealed`: the secret encrypted (AES-256-GCM) under a key from
`OKR_SECRET_KEYS`, which never enters the database (okrgraph.domain.webhooks.secrets).

A migration cannot know that key, so existing plaintext secrets are not carried
over: the upgrade erases them and disables every endpoint that had one, stamped
`disabled_at`. An admin gives such an endpoint a new secret with
`rotateWebhookSecret` and enables it again (`updateWebhookEndpoint`, `enabled:
true`); an enabled endpoint always has a secret (a check constraint says so).
The downgrade cannot decrypt either: it gives every endpoint a fresh random
plaintext secret that no receiver knows, and disables them all.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_webhook_secrets"
down_revision: str | None = "0003_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_endpoints", sa.Column("secret_sealed", sa.String(300), nullable=True))
    op.execute(
        "UPDATE webhook_endpoints SET enabled = false, disabled_at = coalesce(disabled_at, now())"
    )
    op.drop_column("webhook_endpoints", "secret")
    op.create_check_constraint(
        op.f("ck_webhook_endpoints_enabled_has_secret"),
        "webhook_endpoints",
        "secret_sealed IS NOT NULL OR NOT enabled",
    )
    op.create_check_constraint(
        op.f("ck_webhook_endpoints_secret_not_plaintext"),
        "webhook_endpoints",
        "secret_sealed NOT LIKE 'whsec%'",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_webhook_endpoints_secret_not_plaintext"), "webhook_endpoints", type_="check"
    )
    op.drop_constraint(
        op.f("ck_webhook_endpoints_enabled_has_secret"), "webhook_endpoints", type_="check"
    )
    op.add_column("webhook_endpoints", sa.Column("secret", sa.String(200), nullable=True))
    # 32 bytes from two v4 UUIDs (PostgreSQL's strong random source), as `new_secret` made them.
    op.execute(
        "UPDATE webhook_endpoints SET enabled = false,"
        " disabled_at = coalesce(disabled_at, now()),"
        " secret = 'whsec_' || encode(decode(replace("
        "gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64')"
    )
    op.alter_column("webhook_endpoints", "secret", nullable=False)
    op.drop_column("webhook_endpoints", "secret_sealed")
