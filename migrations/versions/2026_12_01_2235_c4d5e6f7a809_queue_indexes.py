"""queue indexes: the default order walked in an index, the tab counts from an index, references by trigrams

Revision ID: c4d5e6f7a809
Revises: c4e8a1f07b52
Create Date: 2026-12-01 22:00:00
"""

from alembic import op

revision = "c4d5e6f7a809"
down_revision = "c4e8a1f07b52"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_dossier_queue_order", "dossier", ["submitted_at", "id", "state"])
    op.create_index("ix_dossier_state_assignee", "dossier", ["state", "assigned_to_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # a trusted extension since PG 13
    op.create_index("ix_dossier_reference_trgm", "dossier", ["reference"], postgresql_using="gin",
                    postgresql_ops={"reference": "gin_trgm_ops"})


def downgrade():
    op.drop_index("ix_dossier_reference_trgm", table_name="dossier")
    op.drop_index("ix_dossier_state_assignee", table_name="dossier")
    op.drop_index("ix_dossier_queue_order", table_name="dossier")
