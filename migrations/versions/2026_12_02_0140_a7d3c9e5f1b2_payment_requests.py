"""payment requests (demandes de versement) and their realised expenses

Two new tables; the dossier and payment tables (and their SQLite triggers) are left untouched.

Revision ID: a7d3c9e5f1b2
Revises: a7c31e9d5b42
Create Date: 2026-12-02 01:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a7d3c9e5f1b2'
down_revision = 'a7c31e9d5b42'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'payment_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dossier_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('first_sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_by_id', sa.Integer(), nullable=True),
        sa.Column('attestation', sa.Text(), nullable=True),
        sa.Column('attested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('payable_amount', sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column('findings', sa.JSON(), nullable=True),
        sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('returned_by_id', sa.Integer(), nullable=True),
        sa.Column('return_message', sa.Text(), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('paid_by_id', sa.Integer(), nullable=True),
        sa.Column('reduction_reason', sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('acompte', 'solde')", name=op.f('ck_payment_request_kind')),
        sa.CheckConstraint("status IN ('draft', 'sent', 'returned', 'paid')", name=op.f('ck_payment_request_status')),
        sa.CheckConstraint("status <> 'paid' OR payment_id IS NOT NULL", name=op.f('ck_payment_request_paid_has_payment')),
        sa.CheckConstraint("status = 'draft' OR (first_sent_at IS NOT NULL AND attested_at IS NOT NULL)",
                           name=op.f('ck_payment_request_sent_attested')),
        sa.CheckConstraint('payable_amount IS NULL OR payable_amount >= 0', name=op.f('ck_payment_request_payable_positive')),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_payment_request_created_by_id_user_account')),
        sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_payment_request_dossier_id_dossier'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['paid_by_id'], ['user_account.id'], name=op.f('fk_payment_request_paid_by_id_user_account')),
        sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_payment_request_payment_id_payment')),
        sa.ForeignKeyConstraint(['returned_by_id'], ['user_account.id'], name=op.f('fk_payment_request_returned_by_id_user_account')),
        sa.ForeignKeyConstraint(['sent_by_id'], ['user_account.id'], name=op.f('fk_payment_request_sent_by_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_request')),
        sa.UniqueConstraint('payment_id', name=op.f('uq_payment_request_payment_id')),
    )
    with op.batch_alter_table('payment_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_request_dossier_id'), ['dossier_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_request_status'), ['status'], unique=False)
        batch_op.create_index('ux_payment_request_open', ['dossier_id'], unique=True,
                              postgresql_where=sa.text("status <> 'paid'"), sqlite_where=sa.text("status <> 'paid'"))
    op.create_table(
        'realised_expense',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('category', sa.String(length=20), nullable=False),
        sa.Column('label', sa.String(length=300), nullable=False),
        sa.Column('amount_ht', sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column('pack', sa.Integer(), nullable=True),
        sa.Column('months', sa.Integer(), nullable=True),
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.CheckConstraint("category IN ('equipement', 'logiciel', 'licence', 'cablage')", name=op.f('ck_realised_expense_category')),
        sa.CheckConstraint('amount_ht > 0', name=op.f('ck_realised_expense_amount_positive')),
        sa.CheckConstraint('pack IS NULL OR pack BETWEEN 1 AND 3', name=op.f('ck_realised_expense_pack')),
        sa.CheckConstraint('months IS NULL OR months > 0', name=op.f('ck_realised_expense_months_positive')),
        sa.ForeignKeyConstraint(['invoice_id'], ['document.id'], name=op.f('fk_realised_expense_invoice_id_document')),
        sa.ForeignKeyConstraint(['request_id'], ['payment_request.id'], name=op.f('fk_realised_expense_request_id_payment_request'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_realised_expense')),
    )
    with op.batch_alter_table('realised_expense', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_realised_expense_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_realised_expense_request_id'), ['request_id'], unique=False)


def downgrade():
    op.drop_table('realised_expense')
    op.drop_table('payment_request')
