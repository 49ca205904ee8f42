"""audit chain: each audit event carries the hash of the previous one; append-only; verifications

Revision ID: b7c3d9e1f2a4
Revises: b7c1d2e3f405
Create Date: 2026-12-01 22:10:00

Existing rows are chained in id order with the serialisation of ``instruction.audit.chain`` as it
was when this migration was written (copied below: migrations import no application code). Then
triggers refuse any UPDATE or DELETE of ``audit_event`` (TRUNCATE, an owner's operation, is left
to privileges; a truncated chain is caught by the verification's anchor).
"""
import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7c3d9e1f2a4'
down_revision = 'b7c1d2e3f405'
branch_labels = None
depends_on = None

GENESIS = "0" * 64

PG_FUNCTION = """
CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def _plain(value):
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _hash(fields: dict) -> str:
    kept = {k: _plain(v) for k, v in fields.items() if k not in ("id", "hash") and v is not None}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                                     default=_plain).encode("utf-8")).hexdigest()


def upgrade():
    op.create_table(
        'audit_verification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('events_checked', sa.Integer(), nullable=False),
        sa.Column('last_event_id', sa.Integer(), nullable=True),
        sa.Column('last_hash', sa.String(length=64), nullable=True),
        sa.Column('first_broken_id', sa.Integer(), nullable=True),
        sa.Column('message', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_verification')),
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))

    event = sa.table('audit_event', sa.column('id', sa.Integer), sa.column('dossier_id', sa.Integer),
                     sa.column('actor_id', sa.Integer), sa.column('action', sa.String),
                     sa.column('from_state', sa.String), sa.column('to_state', sa.String),
                     sa.column('at', sa.DateTime(timezone=True)), sa.column('reason', sa.Text),
                     sa.column('prev_hash', sa.String), sa.column('hash', sa.String))
    connection = op.get_bind()
    previous, links = GENESIS, []
    for row in connection.execute(sa.select(event).order_by(event.c.id)).mappings():
        fields = {**row, "prev_hash": previous}
        previous = _hash(fields)
        links.append({"row_id": row["id"], "prev": fields["prev_hash"], "digest": previous})
    if links:
        connection.execute(event.update().where(event.c.id == sa.bindparam('row_id'))
                           .values(prev_hash=sa.bindparam('prev'), hash=sa.bindparam('digest')), links)

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_prev_hash'), ['prev_hash'])

    if connection.dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute("CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event "
                   "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()")
    elif connection.dialect.name == 'sqlite':
        for operation in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER audit_event_no_{operation.lower()} BEFORE {operation} ON audit_event "
                       f"BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: {operation} refused'); END")


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER audit_event_no_update_delete ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
    elif connection.dialect.name == 'sqlite':
        op.execute("DROP TRIGGER audit_event_no_update")
        op.execute("DROP TRIGGER audit_event_no_delete")
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_prev_hash'), type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
    op.drop_table('audit_verification')
