"""payment requests: a balance whose payable amount is 0,00 € is settled without a payment

``payment_request.settled_at`` (when it was settled at 0,00 €); the CHECK ``paid_has_payment``
lets a paid request have no payment when it is such a balance. SQLite rebuilds the table for its
CHECK (batch mode; nothing but foreign keys references it, and migrations run there with foreign
keys off, see migrations/env.py).

Revision ID: b3e8f1a2c4d6
Revises: a7d3c9e5f1b2
Create Date: 2026-12-02 04:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b3e8f1a2c4d6'
down_revision = 'a7d3c9e5f1b2'
branch_labels = None
depends_on = None

BEFORE = "status <> 'paid' OR payment_id IS NOT NULL"
AFTER = ("status <> 'paid' OR payment_id IS NOT NULL "
         "OR (kind = 'solde' AND payable_amount = 0 AND settled_at IS NOT NULL)")


def upgrade():
    with op.batch_alter_table('payment_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f('ck_payment_request_paid_has_payment'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payment_request_paid_has_payment'), AFTER)


def downgrade():
    # A balance settled at 0,00 € has no payment to point to: it goes back to « sent ».
    op.execute("UPDATE payment_request SET status = 'sent' WHERE status = 'paid' AND payment_id IS NULL")
    with op.batch_alter_table('payment_request', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payment_request_paid_has_payment'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payment_request_paid_has_payment'), BEFORE)
        batch_op.drop_column('settled_at')
