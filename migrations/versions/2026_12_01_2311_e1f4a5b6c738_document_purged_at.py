"""document purged at: the file was deleted at the end of its retention period

Revision ID: e1f4a5b6c738
Revises: d9e3f4a5b627
Create Date: 2026-12-01 23:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e1f4a5b6c738'
down_revision = 'd9e3f4a5b627'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
