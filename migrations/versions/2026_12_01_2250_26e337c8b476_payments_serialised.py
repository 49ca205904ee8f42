"""payments serialised: the database refuses money that does not add up

A paid amount needs a granted amount (NULLs included) and a granted or paid dossier; a payment can
only be made on a granted or paid dossier, and the payments that count never exceed the grant
(triggers, on PostgreSQL and SQLite); payments can be cancelled with a reason; the mandate
reference is unique per budget year; one-time tokens of the forms that move money.

The sums (payments of a dossier against its grant and its paid amount) are triggers on both
backends; SQLite rebuilds the dossier table for its CHECK constraints (migrations run there with
foreign keys off, see migrations/env.py).

Revision ID: 26e337c8b476
Revises: d1f5b2c3e4a7
Create Date: 2026-12-01 22:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '26e337c8b476'
down_revision = 'd1f5b2c3e4a7'
branch_labels = None
depends_on = None

PAID_WITHIN_GRANT = "paid_amount IS NULL OR (granted_amount IS NOT NULL AND paid_amount <= granted_amount)"
PAID_ONLY_WHEN_GRANTED = "paid_amount IS NULL OR state IN ('granted', 'paid')"

PG_FUNCTIONS = """
CREATE FUNCTION payment_within_grant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d_state varchar;
    d_granted numeric;
    total numeric;
BEGIN
    -- The dossier row is locked: a cancellation of the grant cannot slip in before our commit.
    SELECT state, granted_amount INTO d_state, d_granted FROM dossier WHERE id = NEW.dossier_id FOR UPDATE;
    IF NEW.cancelled_at IS NULL AND (d_state NOT IN ('granted', 'paid') OR d_granted IS NULL) THEN
        RAISE EXCEPTION 'payment on dossier % which is not granted', NEW.dossier_id
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT COALESCE(SUM(amount), 0) INTO total FROM payment
        WHERE dossier_id = NEW.dossier_id AND cancelled_at IS NULL;
    IF total > COALESCE(d_granted, 0) THEN
        RAISE EXCEPTION 'payments of dossier % exceed its grant', NEW.dossier_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION dossier_payments_hold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
    n integer;
BEGIN
    SELECT COALESCE(SUM(amount), 0), COUNT(*) INTO total, n FROM payment
        WHERE dossier_id = NEW.id AND cancelled_at IS NULL;
    IF n > 0 AND (NEW.state NOT IN ('granted', 'paid') OR NEW.granted_amount IS NULL
                  OR total > NEW.granted_amount) THEN
        RAISE EXCEPTION 'dossier % holds payments its grant does not cover', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF COALESCE(NEW.paid_amount, 0) <> total THEN
        RAISE EXCEPTION 'paid amount of dossier % is not the sum of its payments', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payment_within_grant AFTER INSERT OR UPDATE ON payment
    FOR EACH ROW EXECUTE FUNCTION payment_within_grant();
CREATE TRIGGER dossier_payments_hold AFTER UPDATE OF state, granted_amount, paid_amount ON dossier
    FOR EACH ROW EXECUTE FUNCTION dossier_payments_hold();
"""

# SQLite compares numbers stored with NUMERIC affinity: ROUND keeps cents exact.
_SQLITE_PAYMENT_CHECK = """
WHEN NEW.cancelled_at IS NULL AND (
    (SELECT state FROM dossier WHERE id = NEW.dossier_id) NOT IN ('granted', 'paid')
    OR (SELECT granted_amount FROM dossier WHERE id = NEW.dossier_id) IS NULL
    OR ROUND((SELECT SUM(amount) FROM payment WHERE dossier_id = NEW.dossier_id AND cancelled_at IS NULL), 2)
       > ROUND((SELECT granted_amount FROM dossier WHERE id = NEW.dossier_id), 2))
BEGIN SELECT RAISE(ABORT, 'payment outside its grant'); END
"""
_SQLITE_DOSSIER_CHECK = """
WHEN (NEW.paid_amount IS NOT NULL AND (NEW.granted_amount IS NULL OR NEW.paid_amount > NEW.granted_amount
                                       OR NEW.state NOT IN ('granted', 'paid')))
  OR (EXISTS (SELECT 1 FROM payment WHERE dossier_id = NEW.id AND cancelled_at IS NULL)
      AND (NEW.state NOT IN ('granted', 'paid') OR NEW.granted_amount IS NULL))
  OR ROUND(COALESCE(NEW.paid_amount, 0), 2)
     <> ROUND(COALESCE((SELECT SUM(amount) FROM payment WHERE dossier_id = NEW.id AND cancelled_at IS NULL), 0), 2)
BEGIN SELECT RAISE(ABORT, 'dossier amounts do not hold'); END
"""
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER payment_within_grant_insert AFTER INSERT ON payment {_SQLITE_PAYMENT_CHECK}",
    f"CREATE TRIGGER payment_within_grant_update AFTER UPDATE ON payment {_SQLITE_PAYMENT_CHECK}",
    f"CREATE TRIGGER dossier_payments_hold AFTER UPDATE OF state, granted_amount, paid_amount ON dossier "
    f"{_SQLITE_DOSSIER_CHECK}",
]
SQLITE_TRIGGER_NAMES = ["payment_within_grant_insert", "payment_within_grant_update", "dossier_payments_hold"]


def upgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_year', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
    payment = sa.table('payment', sa.column('id', sa.Integer), sa.column('paid_on', sa.Date),
                       sa.column('budget_year', sa.Integer))
    connection = op.get_bind()
    rows = connection.execute(sa.select(payment.c.id, payment.c.paid_on)).all()
    if rows:
        connection.execute(
            payment.update().where(payment.c.id == sa.bindparam('row_id'))
            .values(budget_year=sa.bindparam('year')),
            [{'row_id': row.id, 'year': row.paid_on.year} for row in rows],
        )
    # Nothing references payment: rebuilding it on SQLite is safe.
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.alter_column('budget_year', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_payment_cancelled_by_id_user_account'), 'user_account',
                                    ['cancelled_by_id'], ['id'])
        batch_op.create_check_constraint(batch_op.f('ck_payment_cancel_has_reason'),
                                         'cancelled_at IS NULL OR cancel_reason IS NOT NULL')
        batch_op.create_index('ux_payment_reference_year', ['budget_year', 'reference'], unique=True,
                              postgresql_where=sa.text('cancelled_at IS NULL'),
                              sqlite_where=sa.text('cancelled_at IS NULL'))

    op.create_table('operation_token',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('dossier_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dossier_id'], ['dossier.id'], name=op.f('fk_operation_token_dossier_id_dossier'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_operation_token'))
    )
    with op.batch_alter_table('operation_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operation_token_dossier_id'), ['dossier_id'], unique=False)

    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_dossier_paid_within_grant'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_dossier_paid_within_grant'), PAID_WITHIN_GRANT)
        batch_op.create_check_constraint(batch_op.f('ck_dossier_paid_only_when_granted'), PAID_ONLY_WHEN_GRANTED)
    if connection.dialect.name == 'postgresql':
        op.execute(PG_FUNCTIONS)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER dossier_payments_hold ON dossier")
        op.execute("DROP TRIGGER payment_within_grant ON payment")
        op.execute("DROP FUNCTION dossier_payments_hold()")
        op.execute("DROP FUNCTION payment_within_grant()")
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table('dossier', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_dossier_paid_only_when_granted'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_dossier_paid_within_grant'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_dossier_paid_within_grant'),
                                         'paid_amount IS NULL OR paid_amount <= granted_amount')
    with op.batch_alter_table('operation_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operation_token_dossier_id'))
    op.drop_table('operation_token')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index('ux_payment_reference_year')
        batch_op.drop_constraint(batch_op.f('ck_payment_cancel_has_reason'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_payment_cancelled_by_id_user_account'), type_='foreignkey')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by_id')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('budget_year')
