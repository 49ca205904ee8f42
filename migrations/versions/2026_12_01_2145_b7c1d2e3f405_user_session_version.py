"""user session version: raising it ends every session and remember cookie of the account

Revision ID: b7c1d2e3f405
Revises: 5e7a1c0d3b21
Create Date: 2026-12-01 21:45:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b7c1d2e3f405'
down_revision = '5e7a1c0d3b21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_version')
