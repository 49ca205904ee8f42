"""service identity: the one row naming the service on the legal acts

Revision ID: 5e7a1c0d3b21
Revises: 434d5a9f5611
Create Date: 2026-12-01 21:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5e7a1c0d3b21'
down_revision = '434d5a9f5611'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'service_identity',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('authority_name', sa.String(length=200), nullable=False),
        sa.Column('service_name', sa.String(length=200), nullable=False),
        sa.Column('postal_address', sa.Text(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('telephone', sa.String(length=40), nullable=False),
        sa.Column('signatory_name', sa.String(length=200), nullable=False),
        sa.Column('signatory_title', sa.String(length=200), nullable=False),
        sa.Column('tribunal_name', sa.String(length=200), nullable=False),
        sa.Column('tribunal_address', sa.Text(), nullable=False),
        sa.Column('telerecours_url', sa.String(length=300), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_service_identity_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_service_identity')),
    )


def downgrade():
    op.drop_table('service_identity')
