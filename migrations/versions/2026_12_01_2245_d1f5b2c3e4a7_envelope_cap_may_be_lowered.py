"""envelope: no CHECK consumed <= cap_limit (a dated lowering of the cap is kept and reported;
grants stay under the cap by their conditional UPDATE)

Revision ID: d1f5b2c3e4a7
Revises: b7c1e2d3a415
Create Date: 2026-12-01 22:45:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd1f5b2c3e4a7'
down_revision = 'b7c1e2d3a415'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('envelope', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_envelope_within_cap'), type_='check')


def downgrade():
    with op.batch_alter_table('envelope', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_envelope_within_cap'), 'consumed <= cap_limit')
