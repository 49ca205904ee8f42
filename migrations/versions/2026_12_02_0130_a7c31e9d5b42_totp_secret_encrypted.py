"""two-factor secrets encrypted at rest: room for a Fernet token

Revision ID: a7c31e9d5b42
Revises: 720fd12fbb71
Create Date: 2026-12-02 01:30:00

The secrets themselves are encrypted by the application, which has the key (a migration never
imports the application, docs/decisions.md): each secret still in clear is encrypted at its next
use, and all of them by ``instruction two-factor reencrypt``, to run once after this upgrade
(README, operations). A downgrade refuses to run while encrypted secrets exist
(they do not fit the old width, and dropping them would silently turn two-factor authentication off).
"""
import sqlalchemy as sa
from alembic import op

revision = 'a7c31e9d5b42'
down_revision = '720fd12fbb71'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', existing_type=sa.String(length=64), type_=sa.String(length=255),
                              existing_nullable=True)


def downgrade():
    encrypted = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM user_account WHERE length(totp_secret) > 64")).scalar()
    if encrypted:
        raise RuntimeError(f"{encrypted} encrypted two-factor secret(s) do not fit the old column: "
                           "downgrading would turn their two-factor authentication off")
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', existing_type=sa.String(length=255), type_=sa.String(length=64),
                              existing_nullable=True)
