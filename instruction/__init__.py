"""Back-office d'instruction des aides numériques de la Région Bourgogne-Franche-Comté."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from instruction.config import load_config, resource_root

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def register_blueprints(app: Flask) -> None:
    from instruction.accounts.account_views import bp as account_bp
    from instruction.accounts.views import bp as auth_bp
    from instruction.admin.labels_views import bp as labels_bp
    from instruction.admin.views import bp as admin_bp
    from instruction.backoffice.dashboard_views import bp as dashboard_bp
    from instruction.backoffice.teamwork_views import bp as teamwork_bp
    from instruction.backoffice.views import bp as backoffice_bp
    from instruction.commission.views import bp as commission_bp
    from instruction.documents.views import acts_bp
    from instruction.documents.views import bp as documents_bp
    from instruction.exports.views import bp as exports_bp
    from instruction.legal.views import bp as legal_bp
    from instruction.notifications.views import bp as notifications_bp
    from instruction.payment_requests.views import finance as payment_requests_finance_bp
    from instruction.payment_requests.views import portal as payment_requests_bp
    from instruction.portal.thread_views import bp as portal_thread_bp
    from instruction.portal.views import bp as portal_bp
    from instruction.web.health import bp as health_bp
    from instruction.web.views import bp as main_bp

    for blueprint in (auth_bp, account_bp, main_bp, portal_bp, backoffice_bp, documents_bp, notifications_bp,
                      admin_bp, acts_bp, commission_bp, teamwork_bp, portal_thread_bp, labels_bp, health_bp,
                      dashboard_bp, exports_bp, legal_bp, payment_requests_bp, payment_requests_finance_bp):
        app.register_blueprint(blueprint)


def register_jobs() -> None:
    """Give the job runner each package's periodic jobs, by the names of the beat schedule and in
    the order ``instruction worker run-jobs`` runs them (the runner imports none of them)."""
    from instruction.acts.services import render_acts
    from instruction.documents.retention import purge_documents
    from instruction.dossiers.jobs import expire_drafts, send_reminders
    from instruction.notifications import jobs
    from instruction.payment_requests.deadlines import balance_deadlines
    from instruction.teamwork.digest import send_digests

    jobs.install({"deadline": expire_drafts, "reminders": send_reminders, "digest": send_digests,
                  "dispatch": jobs.dispatch_pending, "acts": render_acts, "purge_documents": purge_documents,
                  "balance_deadlines": balance_deadlines})


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration from the environment, overridable by ``test_config``."""
    root = resource_root()  # templates, static files, migrations (INSTRUCTION_HOME for a wheel)
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(root / "instance"),
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
    )
    app.config.from_mapping(load_config(Path(app.instance_path), test_config or {}))
    if proxies := app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Flask documents wrapping its WSGI callable so; its stubs declare wsgi_app a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    from instruction.extensions import init_extensions

    init_extensions(app)

    from instruction.web import register_web

    register_web(app)
    from instruction.dossiers import workflow

    # The state rules of the workflow, for templates: ``{% if dossier.state in PENDING_STATES %}``.
    app.jinja_env.globals.update(
        EDITABLE_STATES=workflow.EDITABLE_STATES, PENDING_STATES=workflow.PENDING_STATES,
        CONSUMING_STATES=workflow.CONSUMING_STATES, CLOSED_STATES=workflow.CLOSED_STATES)
    register_blueprints(app)

    register_jobs()  # before the commands: `worker run-jobs --job` offers their names
    from instruction.cli import register_commands

    register_commands(app)
    from worker.celery_app import install_publisher

    install_publisher(app)  # the worker gives the outbox dispatcher its publisher
    return app
