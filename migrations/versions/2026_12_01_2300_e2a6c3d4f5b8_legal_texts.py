"""legal texts: the texts of the legal pages beside the service's identity

Revision ID: e2a6c3d4f5b8
Revises: 26e337c8b476
Create Date: 2026-12-01 23:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e2a6c3d4f5b8'
down_revision = '26e337c8b476'
branch_labels = None
depends_on = None

COLUMNS = ('legal_notice', 'privacy_notice', 'accessibility_statement')


def upgrade():
    with op.batch_alter_table('service_identity', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Text(), nullable=False, server_default=''))
    with op.batch_alter_table('service_identity', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.alter_column(name, existing_type=sa.Text(), server_default=None)


def downgrade():
    with op.batch_alter_table('service_identity', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
