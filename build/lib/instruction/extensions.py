"""Flask extensions, created unbound and initialised by the application factory."""

from __future__ import annotations

from flask import Flask
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError

from instruction.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
bootstrap = Bootstrap5()


def init_extensions(app: Flask) -> None:
    import instruction.models  # noqa: F401  (registers every model on the metadata)

    db.init_app(app)
    app.teardown_appcontext_funcs.remove(db._teardown_session)
    app.teardown_appcontext(_end_session)
    from instruction.config import resource_root

    migrate.init_app(app, db, directory=str(resource_root() / "migrations"), render_as_batch=True,
                     compare_type=True)
    csrf.init_app(app)
    bootstrap.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Veuillez vous connecter pour accéder à cette page."
    login_manager.login_message_category = "warning"
    from instruction.notifications import init_app as init_notifications  # dispatch, unread badge
    init_notifications(app)


def _end_session(error: BaseException | None) -> None:
    """Flask-SQLAlchemy's end of request, when the connection may be dead: while PostgreSQL
    restarts, the ROLLBACK of ``session.remove()`` raises after the French 503 was rendered, and
    gunicorn would answer its own English 500 instead. The dead connection is invalidated (the pool
    opens a new one for the next request) and the session forgotten."""
    try:
        db.session.remove()
    except SQLAlchemyError:
        db.session.registry().invalidate()
        db.session.registry.clear()
