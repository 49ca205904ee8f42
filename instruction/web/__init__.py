"""Web shell: error pages, security headers, template helpers, and what views share (``actions``:
the unit of work, ``access``, ``numbers``, ``forms``). It imports no blueprint: the packages import
it."""

from __future__ import annotations

from flask import Flask, abort, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.routing import IntegerConverter

from instruction.errors import SecretKeyMismatch, StorageUnavailable
from instruction.extensions import db
from instruction.web.filters import register_filters


class DatabaseIdConverter(IntegerConverter):
    """``<int:…>`` in every route: an id beyond a 32-bit integer column cannot exist, so it is a
    404 rather than a database error."""

    regex = r"[0-9]{1,10}"  # ASCII digits only (``\\d`` would take "٣")

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


# No inline script or style anywhere: scripts and styles come from our own static files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def security_headers(response):
    """Headers of every answer; the CSP on HTML pages, HSTS when the request came over HTTPS
    (directly, or through the trusted proxy: ``PROXY_COUNT``)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def standalone_page(code: int, title: str, message: str) -> str:
    """An error page rendered straight from the template, without the context processors (Flask-Login's
    loads the signed-in user from the database): it works while the database is down."""
    return current_app.jinja_env.get_template("errors/unavailable.html").render(
        code=code, title=title, message=message)


def refuse_nul_characters() -> None:
    """A form field holding a NUL character (U+0000) is refused with a French 400: PostgreSQL text
    cannot store it, and the insert would fail as a 500 (found by the fuzzing). Query strings are
    left to the views, which read them without saving them."""
    if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.form.lists()):
        abort(400, "Le formulaire contient un caractère invalide (caractère nul) : corrigez la saisie, "
                   "puis renvoyez-le. Rien n'a été enregistré.")


def register_web(app: Flask) -> None:
    from instruction.web.request_log import register_request_log

    register_request_log(app)  # first: the request id is set before any other hook can fail
    app.after_request(security_headers)
    app.before_request(refuse_nul_characters)
    app.url_map.converters["int"] = DatabaseIdConverter
    register_filters(app)  # the blueprints are registered by the app factory, above every package

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template(
            "errors/error.html", code=400, title="Formulaire expiré",
            message="Le formulaire a expiré ou n'a pas été envoyé depuis cette application. "
                    "Rechargez la page et recommencez.",
        ), 400

    messages = {
        400: ("Requête invalide", "La requête envoyée n'est pas valide."),
        403: ("Accès refusé", "Vous n'avez pas le droit d'accéder à cette page."),
        404: ("Page introuvable", "La page demandée n'existe pas ou n'est pas accessible."),
        405: ("Méthode non autorisée", "Cette action n'est pas possible sur cette page."),
        409: ("Action impossible", "L'action demandée n'est pas possible dans l'état actuel du dossier."),
        413: ("Fichier trop volumineux", "Le fichier envoyé dépasse la taille autorisée."),
        429: ("Trop de tentatives", "Trop de tentatives : réessayez dans quelques minutes."),
        500: ("Erreur interne", "Une erreur inattendue s'est produite. Elle a été enregistrée ; "
                                "aucune donnée déjà enregistrée n'est perdue."),
    }

    def make_handler(code: int):
        def handler(error):
            title, message = messages[code]
            description = getattr(error, "description", None)
            if description and description != getattr(type(error), "description", None):
                message = description  # given by our code (abort(409, "…")), not Werkzeug's English default
            try:
                return render_template("errors/error.html", code=code, title=title, message=message), code
            except Exception:  # noqa: BLE001 - e.g. the navigation's queries fail: the page without it
                app.logger.exception("error page %s could not be rendered with the layout", code)
                return standalone_page(code, title, message), code
        return handler

    for code in messages:
        app.register_error_handler(code, make_handler(code))

    def unavailable(title: str, message: str):
        """A French 503 rendered without the database (no base.html, no current user)."""
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is what failed; the request ends anyway
            pass
        response = app.make_response((standalone_page(503, title, message), 503))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(DisconnectionError)
    @app.errorhandler(PoolTimeoutError)
    def database_unavailable(error):
        app.logger.error("database unavailable: %s", error)
        return unavailable("Service momentanément indisponible",
                           "La base de données ne répond pas pour le moment (maintenance ou redémarrage).")

    @app.errorhandler(SecretKeyMismatch)
    def secret_key_mismatch(error):
        app.logger.error("two-factor secrets unreadable: %s", error)
        return unavailable("Double authentification momentanément indisponible",
                           "Les codes de l'application d'authentification ne peuvent pas être vérifiés : "
                           "la clé de chiffrement du serveur ne correspond pas. Connectez-vous avec un code "
                           "de secours, ou prévenez l'administrateur.")

    @app.errorhandler(StorageUnavailable)
    def storage_unavailable(error):
        app.logger.error("upload store unavailable: %s", error)
        return unavailable("Pièces momentanément indisponibles",
                           "Le stockage des pièces justificatives ne répond pas pour le moment : "
                           "aucun fichier n'a été enregistré.")
