"""The one migration history upgrades an empty and a populated PostgreSQL and SQLite database, and
matches the models: columns, types, indexes, unique and foreign keys and server defaults (Alembic's
comparison), plus the CHECK constraints, which Alembic does not compare."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from instruction.extensions import db
from tests.conftest import make_test_app, recreate_database, sibling_database_url

OPENS = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
DEADLINE = datetime(2027, 6, 30, 22, 0, tzinfo=UTC)
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, db.metadata) + _check_differences(connection)


def _normalised(sql: str) -> str:
    return " ".join(sql.replace("(", " ").replace(")", " ").split())


def _check_differences(connection) -> list:
    """CHECK constraints by name on both backends; on SQLite, which keeps the text as written,
    also by their condition (PostgreSQL rewrites it, e.g. ``IN`` as ``= ANY (ARRAY[...])``)."""
    inspector = sa.inspect(connection)
    by_text = connection.dialect.name == "sqlite"
    differences = []
    for table in db.metadata.sorted_tables:
        expected = {str(c.name): _normalised(str(c.sqltext)) for c in table.constraints
                    if isinstance(c, sa.CheckConstraint)}
        found = {c["name"]: _normalised(c["sqltext"]) for c in inspector.get_check_constraints(table.name)}
        for name in sorted(expected.keys() - found.keys()):
            differences.append(("missing check in the database", table.name, name))
        for name in sorted(found.keys() - expected.keys()):
            differences.append(("check not in the models", table.name, name))
        for name in sorted(expected.keys() & found.keys()):
            if by_text and expected[name] != found[name]:
                differences.append(("check differs", table.name, name, expected[name], found[name]))
    return differences


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


# The revision before ``collectivite.search_name``: the data below is written in its schema.
POPULATED_AT = "47bd26758ee0"


def _populate(connection) -> None:
    """A small but real database of that time: territory, campaign, accounts, a granted dossier
    with its audit trail and envelope, an outbox message (plain SQL: the models are newer)."""
    rows = {
        "departement": [{"code": "21", "name": "Côte-d'Or"}],
        "collectivite": [
            {"id": 1, "kind": "epci", "name": "CC de la Plaine Dijonnaise", "siren": "200000925",
             "departement_code": "21", "population": 22152, "epci_type": "CC"},
            {"id": 2, "kind": "commune", "name": "Bessey-lès-Cîteaux", "insee": "21068",
             "departement_code": "21", "population": 775, "epci_id": 1},
        ],
        "campaign": [{"id": 1, "code": "demo", "title": "Démo", "reference_prefix": "DEMO",
                      "opens_at": OPENS, "deadline_at": DEADLINE}],
        "user_account": [
            {"id": 1, "email": "agent@bessey.fr", "full_name": "Agent de Bessey", "password_hash": "x",
             "role": "applicant", "collectivite_id": 2, "active": True, "created_at": AT,
             "approved_at": AT},
            {"id": 2, "email": "instructrice@region.fr", "full_name": "Instructrice", "password_hash": "x",
             "role": "instructor", "active": True, "created_at": AT, "approved_at": AT},
        ],
        "dossier": [{"id": 1, "reference": "DEMO-A2-000001", "campaign_id": 1, "aid_number": 2,
                     "collectivite_id": 1, "state": "granted", "title": "Sauvegarde", "created_by_id": 1,
                     "created_at": AT, "updated_at": AT, "submitted_at": AT, "decided_at": AT,
                     "requested_amount": Decimal("4000.00"), "computed_amount": Decimal("4000.00"),
                     "granted_amount": Decimal("4000.00"), "cap_scope": "epci:200000925"}],
        "audit_event": [
            {"id": 1, "dossier_id": 1, "actor_id": 1, "action": "create", "to_state": "draft", "at": AT},
            {"id": 2, "dossier_id": 1, "actor_id": 1, "action": "submit", "from_state": "draft",
             "to_state": "received", "at": AT},
            {"id": 3, "dossier_id": 1, "actor_id": 2, "action": "grant", "from_state": "eligible",
             "to_state": "granted", "at": AT, "reason": None},
        ],
        "envelope": [{"id": 1, "campaign_id": 1, "aid_number": 2, "scope": "epci:200000925",
                      "cap_limit": Decimal("30000.00"), "consumed": Decimal("4000.00")}],
        "outbox_message": [{"id": 1, "key": "dossier:1:event:3", "kind": "grant", "dossier_id": 1,
                            "context": {"reference": "DEMO-A2-000001"}, "created_at": AT}],
    }
    metadata = sa.MetaData()
    metadata.reflect(connection)
    for name, values in rows.items():
        for row in values:
            connection.execute(metadata.tables[name].insert().values(**row))


def test_upgrade_of_a_populated_database_keeps_and_completes_its_data(empty_database_url, tmp_path):
    app = make_test_app(empty_database_url, tmp_path)
    with app.app_context():
        upgrade(revision=POPULATED_AT)
        with db.engine.begin() as connection:
            _populate(connection)
        upgrade()
        with db.engine.connect() as connection:
            names = dict(connection.execute(sa.text("SELECT id, search_name FROM collectivite")).all())
            assert names == {1: "cc de la plaine dijonnaise", 2: "bessey les citeaux"}
            dossier = connection.execute(sa.text(
                "SELECT state, granted_amount FROM dossier WHERE id = 1")).one()
            assert (dossier.state, Decimal(dossier.granted_amount)) == ("granted", Decimal("4000.00"))
            consumed = connection.execute(sa.text("SELECT consumed FROM envelope")).scalar_one()
            assert Decimal(consumed) == Decimal("4000.00")
            users = connection.execute(sa.text(
                "SELECT email FROM user_account ORDER BY id")).scalars().all()
            assert users == ["agent@bessey.fr", "instructrice@region.fr"]
        from instruction.audit.services import verify_chain

        verification = verify_chain()
        assert verification.ok and verification.events_checked == 3
        db.session.remove()
        db.engine.dispose()
    assert _schema_differences(app) == []
