"""The one migration history upgrades an empty PostgreSQL and SQLite database, and matches the models."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from instruction.extensions import db
from tests.conftest import make_test_app, recreate_database, sibling_database_url


def _schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url = sibling_database_url("migrations")
    recreate_database(url)
    return url


def test_upgrade_on_empty_database_matches_models(empty_database_url, tmp_path):
    app = make_test_app(empty_database_url, tmp_path)
    with app.app_context():
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"collectivite", "dossier", "user_account", "campaign", "audit_event"} <= tables
    assert _schema_differences(app) == []
    with app.app_context():
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_migration_files_are_dated_and_import_no_application_code():
    from pathlib import Path

    versions = sorted(Path(__file__).parent.parent.joinpath("migrations", "versions").glob("*.py"))
    assert versions
    for path in versions:
        assert path.name[:4].isdigit() and path.name[4] == "_", path.name
        assert "import instruction" not in path.read_text() and "from instruction" not in path.read_text()
