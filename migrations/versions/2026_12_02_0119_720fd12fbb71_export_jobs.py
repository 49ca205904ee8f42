"""export jobs: large exports of a queue view built by the worker (progress, file, expiry)

Revision ID: 720fd12fbb71
Revises: f52d8486ede4
Create Date: 2026-12-02 01:19:52.218531

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '720fd12fbb71'
down_revision = 'f52d8486ede4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('export_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=4), nullable=False),
    sa.Column('tab', sa.String(length=30), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=True),
    sa.Column('rows_done', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('storage_key', sa.String(length=64), nullable=True),
    sa.Column('file_name', sa.String(length=120), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f('ck_export_job_format')),
    sa.CheckConstraint("status <> 'purged' OR purged_at IS NOT NULL", name=op.f('ck_export_job_purged_has_instant')),
    sa.CheckConstraint("status <> 'ready' OR (storage_key IS NOT NULL AND expires_at IS NOT NULL AND finished_at IS NOT NULL)", name=op.f('ck_export_job_ready_has_file')),
    sa.CheckConstraint("status IN ('queued', 'running', 'ready', 'failed', 'purged')", name=op.f('ck_export_job_status')),
    sa.CheckConstraint('rows_done >= 0', name=op.f('ck_export_job_rows_done_positive')),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_export_job_author_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_job')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_export_job_storage_key'))
    )
    with op.batch_alter_table('export_job', schema=None) as batch_op:
        batch_op.create_index('ix_export_job_author_created', ['author_id', 'created_at'], unique=False)
        batch_op.create_index('ix_export_job_status', ['status'], unique=False)



def downgrade():
    with op.batch_alter_table('export_job', schema=None) as batch_op:
        batch_op.drop_index('ix_export_job_status')
        batch_op.drop_index('ix_export_job_author_created')

    op.drop_table('export_job')
