"""user approval: applicant accounts are approved before they can log in

Adds ``user_account.approved_at`` and ``approved_by_id`` (nullable). Every account that exists
when this migration runs was trusted until now, so it is approved as of its creation
(``approved_at = created_at``, approver unknown); only accounts registered afterwards wait.

Revision ID: 47bd26758ee0
Revises: 0e4bdd794b01
Create Date: 2026-11-28 14:00:02.976554

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '47bd26758ee0'
down_revision = '0e4bdd794b01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_user_account_approved_by_id_user_account'), 'user_account', ['approved_by_id'], ['id'])

    # Existing accounts keep working: they count as approved since their creation.
    op.execute("UPDATE user_account SET approved_at = created_at WHERE approved_at IS NULL")


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_user_account_approved_by_id_user_account'), type_='foreignkey')
        batch_op.drop_column('approved_by_id')
        batch_op.drop_column('approved_at')
