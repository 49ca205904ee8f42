"""Test set-up: a real PostgreSQL database, migrated once, with a transaction per test.

TEST_DATABASE_URL chooses the server (default: the local PostgreSQL, trust auth). The database
named in it is dropped and created afresh at the start of the session.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g, request_tearing_down
from flask.testing import FlaskClient
from flask_migrate import upgrade

from instruction import create_app
from instruction.extensions import db

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/instruction_test"
)


def pytest_addoption(parser):
    parser.addoption("--faults", action="store_true",
                     help="also collect tests/faults: private servers stopped and killed (make test-faults)")


def pytest_ignore_collect(collection_path, config):
    """The fault tests are slow: they run with ``--faults`` (``make test-faults``), not in ``make test``."""
    if collection_path == Path(__file__).parent / "faults" and not config.getoption("--faults"):
        return True
    return None


def sibling_database_url(suffix: str) -> str:
    """Another database on the same server, for tests that need committed data of their own."""
    url = sa.make_url(TEST_DATABASE_URL)
    return url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)


def recreate_database(url: str) -> None:
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    except sa.exc.OperationalError as error:
        pytest.exit(f"PostgreSQL is not reachable at {target.render_as_string()}: {error}\n"
                    "Run `make test` (it starts the services) or set TEST_DATABASE_URL.", returncode=3)
    finally:
        admin.dispose()


TOTP_ENCRYPTION_KEY = "dGVzdHMgb25seTogdGhlIFRPVFAgc2VjcmV0cyBrZXk="  # a Fernet key, for tests only


def make_test_app(database_url: str, tmp: Path, **overrides):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "UPLOAD_FOLDER": str(tmp / "uploads"),
        "EXPORT_FOLDER": str(tmp / "exports"),
        "WTF_CSRF_ENABLED": False,  # the CSRF tests use `csrf_client`
        "MAIL_FOLDER": "",  # e-mails go by SMTP, to the tests' sink
        "REGISTRATION_RATE_LIMIT": "1000 per hour",  # the suite registers many accounts
        # The key of the TOTP secrets, shared with the servers the tests start (their SECRET_KEY
        # differs).
        "TOTP_ENCRYPTION_KEYS": (TOTP_ENCRYPTION_KEY,),
    }
    config.update(overrides)
    return create_app(config)


def prepared_app(database_url: str, tmp: Path, **overrides):
    """The application on a fresh database (PostgreSQL: dropped and created again; SQLite: a new
    file), migrated, holding the territory and the campaigns."""
    from instruction.campaigns.services import sync_campaigns
    from instruction.territory.services import import_territory

    if database_url.startswith("postgresql"):
        recreate_database(database_url)
    app = make_test_app(database_url, tmp, **overrides)
    with app.app_context():
        upgrade()
        import_territory()
        sync_campaigns()
        db.session.remove()
    return app


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The application on a freshly migrated PostgreSQL database holding the reference data."""
    app = prepared_app(TEST_DATABASE_URL, tmp_path_factory.mktemp("app"))
    yield app
    with app.app_context():
        db.engine.dispose()


_client_request: ContextVar[object | None] = ContextVar("client_request", default=None)


class IsolatedClient(FlaskClient):
    """A test client whose every request has a database session of its own (see ``session``)."""

    def open(self, *args, **kwargs):
        token = _client_request.set(object())
        try:
            return super().open(*args, **kwargs)
        finally:
            _client_request.reset(token)


@pytest.fixture
def session(app):
    """Everything a test writes, including through the test client, is rolled back after it."""
    with app.app_context():
        engines = db._app_engines[app]
        engine = engines[None]
        connection = engine.connect()
        transaction = connection.begin()
        engines[None] = connection
        factory_kw = db.session.session_factory.kw
        factory_kw["join_transaction_mode"] = "create_savepoint"
        db.session.remove()
        # A request made through the test client reuses the test's app context; give it a session
        # of its own (on the same connection), as a real request has, and close it at its end.
        registry = db.session.registry
        app_scope = registry.scopefunc
        registry.scopefunc = lambda: (app_scope(), id(_client_request.get()))
        test_session = db.session()

        def end_of_request(sender, **extra):
            """Close the request's session and forget its ``g`` (e.g. Flask-Login's user), as the
            end of a real request's app context would; the test then reads afresh what the
            request wrote."""
            if _client_request.get() is None:
                return  # app.test_request_context() in a test: the test's own session
            db.session.remove()
            for name in list(g):
                g.pop(name)
            test_session.expire_all()

        request_tearing_down.connect(end_of_request, app)
        app.test_client_class = IsolatedClient
        try:
            yield db.session
        finally:
            app.test_client_class = None
            request_tearing_down.disconnect(end_of_request, app)
            db.session.remove()
            registry.scopefunc = app_scope
            factory_kw.pop("join_transaction_mode", None)
            engines[None] = engine
            transaction.rollback()
            connection.close()


@pytest.fixture
def fresh_limiter(app):
    """Empty rate-limit counters before and after the test."""
    from instruction.accounts.limiter import limiter

    limiter.reset()
    yield limiter
    limiter.reset()


@pytest.fixture
def client(app, session):
    return app.test_client()


@pytest.fixture
def csrf_client(app, session):
    """A client with CSRF protection on, as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        yield app.test_client()
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
