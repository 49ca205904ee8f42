"""collectivite search name: the name folded for search (no accents, hyphens as spaces)

Revision ID: 434d5a9f5611
Revises: 47bd26758ee0
Create Date: 2026-11-28 14:36:14.627039

"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '434d5a9f5611'
down_revision = '47bd26758ee0'
branch_labels = None
depends_on = None


def _fold(text: str) -> str:
    """The folding of instruction.territory.names as it was when this migration was written."""
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return re.sub(r"[\s\-'’]+", " ", bare.lower().replace("œ", "oe").replace("æ", "ae")).strip()


def upgrade():
    with op.batch_alter_table('collectivite', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_name', sa.String(length=200), nullable=False,
                                      server_default=''))
    collectivite = sa.table('collectivite', sa.column('id', sa.Integer), sa.column('name', sa.String),
                            sa.column('search_name', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(collectivite.c.id, collectivite.c.name)).all()
    if rows:
        connection.execute(
            collectivite.update().where(collectivite.c.id == sa.bindparam('row_id'))
            .values(search_name=sa.bindparam('folded')),
            [{'row_id': row.id, 'folded': _fold(row.name)} for row in rows],
        )


def downgrade():
    with op.batch_alter_table('collectivite', schema=None) as batch_op:
        batch_op.drop_column('search_name')
