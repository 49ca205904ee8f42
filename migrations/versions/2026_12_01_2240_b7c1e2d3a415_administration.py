"""Administration: audit events of admin actions (no dossier, subject, before/after), per-dossier
deadline extension, campaigns created by an admin (parameter set, dates kept).

Revision ID: b7c1e2d3a415
Revises: c4d5e6f7a809
Create Date: 2026-12-01 22:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7c1e2d3a415'
down_revision = 'c4d5e6f7a809'
branch_labels = None
depends_on = None

STATES = ('draft', 'received', 'incomplete', 'eligible', 'granted', 'paid', 'ineligible', 'refused',
          'withdrawn', 'expired')
IN_STATES = ", ".join(repr(s) for s in STATES)


def _sqlite_append_only_triggers(create: bool) -> None:
    """SQLite's batch mode copies the table anew, which loses its triggers: drop them before,
    create them again after (as the audit chain migration wrote them). PostgreSQL alters in place."""
    if op.get_bind().dialect.name != 'sqlite':
        return
    for operation in ('UPDATE', 'DELETE'):
        if create:
            op.execute(f"CREATE TRIGGER audit_event_no_{operation.lower()} BEFORE {operation} ON audit_event "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {operation} refused'); END")
        else:
            op.execute(f"DROP TRIGGER audit_event_no_{operation.lower()}")


def upgrade():
    _sqlite_append_only_triggers(create=False)
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_kind', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('subject_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('subject_label', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('before', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('after', sa.JSON(), nullable=True))
        batch_op.alter_column('dossier_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('to_state', existing_type=sa.String(length=20), nullable=True)
        batch_op.drop_constraint(op.f('ck_audit_event_to_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_audit_event_to_state'), f"to_state IS NULL OR to_state IN ({IN_STATES})")
        batch_op.create_check_constraint(op.f('ck_audit_event_dossier_event_has_state'),
                                         "dossier_id IS NULL OR to_state IS NOT NULL")
        batch_op.create_check_constraint(op.f('ck_audit_event_has_subject'),
                                         "dossier_id IS NOT NULL OR subject_kind IS NOT NULL")
        batch_op.create_index('ix_audit_event_subject', ['subject_kind', 'subject_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)
    _sqlite_append_only_triggers(create=True)

    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extended_deadline_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parameters_code', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('dates_set_by_admin', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    campaign = sa.table('campaign', sa.column('code', sa.String), sa.column('parameters_code', sa.String))
    op.execute(campaign.update().values(parameters_code=campaign.c.code))
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.alter_column('parameters_code', existing_type=sa.String(length=30), nullable=False)
        batch_op.alter_column('dates_set_by_admin', existing_type=sa.Boolean(), server_default=None)


def downgrade():
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_column('dates_set_by_admin')
        batch_op.drop_column('parameters_code')
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_column('extended_deadline_at')
    # Going back loses the administration events (and so breaks the chain after the first of them).
    _sqlite_append_only_triggers(create=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update_delete")
    op.execute("DELETE FROM audit_event WHERE dossier_id IS NULL")
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_no_update_delete")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))
        batch_op.drop_index('ix_audit_event_subject')
        batch_op.drop_constraint(op.f('ck_audit_event_has_subject'), type_='check')
        batch_op.drop_constraint(op.f('ck_audit_event_dossier_event_has_state'), type_='check')
        batch_op.drop_constraint(op.f('ck_audit_event_to_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_audit_event_to_state'), f"to_state IN ({IN_STATES})")
        batch_op.alter_column('to_state', existing_type=sa.String(length=20), nullable=False)
        batch_op.alter_column('dossier_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('after')
        batch_op.drop_column('before')
        batch_op.drop_column('subject_label')
        batch_op.drop_column('subject_id')
        batch_op.drop_column('subject_kind')
    _sqlite_append_only_triggers(create=True)
