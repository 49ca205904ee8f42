"""collectivite.search_name: no server default (the model fills it; the default was only for the
rows that existed when the column was added)

Revision ID: c4e8a1f07b52
Revises: c8d2e3f4a516
Create Date: 2026-12-01 22:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4e8a1f07b52'
down_revision = 'c8d2e3f4a516'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('collectivite', schema=None) as batch_op:
        batch_op.alter_column('search_name', existing_type=sa.String(length=200), existing_nullable=False,
                              server_default=None)


def downgrade():
    with op.batch_alter_table('collectivite', schema=None) as batch_op:
        batch_op.alter_column('search_name', existing_type=sa.String(length=200), existing_nullable=False,
                              server_default='')
