"""Login, logout, applicant registration, e-mail confirmation, password reset, and the approval of
new accounts by the agents of their collectivité (the admins' page is ``instruction.admin``)."""

from urllib.parse import urljoin, urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from instruction import clock
from instruction.accounts import services, two_factor
from instruction.accounts.forms import (
    ApprovalForm,
    CodeForm,
    CollectiviteSearchForm,
    EmailForm,
    LoginForm,
    RefusalForm,
    RegistrationForm,
    ResetPasswordForm,
)
from instruction.accounts.limiter import (
    email_limit,
    init_limiter,
    login_ip_limit,
    login_limit,
    registration_limit,
    second_factor_limit,
    wait_message,
)
from instruction.accounts.models import User
from instruction.accounts.services import AccountError, authenticate
from instruction.extensions import db, login_manager
from instruction.territory.models import Collectivite
from instruction.territory.services import search_collectivites
from instruction.web.actions import attempt, perform
from instruction.web.numbers import bounded_int

bp = Blueprint("auth", __name__)


@bp.record_once
def _limit(state: BlueprintSetupState) -> None:
    assert isinstance(state.app, Flask)  # the stubs type it as Flask's base class
    init_limiter(state.app)


def parse_session_id(value: str) -> tuple[int, int] | None:
    """The (user id, session version) of a session or remember cookie's id, or None."""
    user_id, _, version = (value or "").partition(":")
    uid, ver = bounded_int(user_id), bounded_int(version, low=0)
    return (uid, ver) if uid is not None and ver is not None else None


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user, while the account may still be used and the session has not been ended:
    a deactivated (or refused) account, or one whose sessions were ended (``end_all_sessions``),
    loses its session and its remember cookie at its next request."""
    parsed = parse_session_id(user_id)
    user = db.session.get(User, parsed[0]) if parsed else None
    if user is None or not user.active or (user.role == "applicant" and user.approved_at is None):
        return None
    if parsed is None or user.session_version != parsed[1]:
        return None  # a session or remember cookie ended by logout, a new password, etc.
    return user


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site is followed after login. Browsers drop tabs and newlines and read
    ``\\`` as ``/`` before resolving a URL, so ``/%09/evil.example`` would become ``//evil.example``:
    any control character, space or backslash refuses the target, and what is left must resolve, as
    a URL, to this very origin."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    origin = request.host_url
    if urlsplit(urljoin(origin, target)).netloc != urlsplit(origin).netloc:
        return None
    return target


def _home_for(user: User) -> str:
    return url_for("portal.index") if user.role == "applicant" else url_for("main.home")


@bp.route("/connexion", methods=["GET", "POST"])
@login_limit
@login_ip_limit
def login():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm()
    status = 200
    unconfirmed = awaiting = None
    if form.validate_on_submit():
        user = attempt(authenticate, form.email.data, form.password.data, now=clock.now()).value
        if user is not None and user.email_confirmed_at is None:
            awaiting = user.collectivite if user.role == "applicant" and user.approved_at is None else None
            unconfirmed = form.email.data
            status = 403
        elif user is not None and not services.may_sign_in(user):
            awaiting = user.collectivite
            status = 403
        elif user is not None and two_factor.required(user):  # the login completes with the code
            return start_second_factor(user, remember=form.remember.data,
                                       target=_safe_next(request.args.get("next")))
        elif user is not None:
            login_user(user, remember=form.remember.data)
            flash(f"Bienvenue, {user.full_name}.", "success")
            return redirect(_safe_next(request.args.get("next")) or _home_for(user))
        else:
            flash("Adresse électronique ou mot de passe incorrect.", "danger")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form, unconfirmed=unconfirmed, awaiting=awaiting,
                           resend_form=EmailForm(formdata=None, email=unconfirmed)), status


@bp.errorhandler(429)
def too_many_attempts(error):
    if request.endpoint == "auth.login":
        flash("Trop de tentatives de connexion infructueuses pour cette adresse. Par sécurité, "
              f"attendez {wait_message()} avant de réessayer, ou utilisez « Mot de passe oublié ».",
              "danger")
        return render_template("auth/login.html", form=LoginForm(), unconfirmed=None, awaiting=None,
                               resend_form=EmailForm(formdata=None)), 429
    return render_template("auth/message.html", title="Trop de demandes",
                           message="Vous avez fait beaucoup de demandes en peu de temps. Attendez "
                                   f"{wait_message()}, puis réessayez.", category="warning"), 429


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout():
    """Ends every session of the account, not only this browser's: a copied or replayed session
    cookie, or a remember cookie left on another computer, dies with it."""
    perform(services.end_all_sessions, current_user._get_current_object())
    logout_user()
    flash("Vous êtes déconnecté.", "info")
    return redirect(url_for("auth.login"))


# --- registration ----------------------------------------------------------------------------------


SEARCH_LIMIT = 20


def _search(text: str) -> list[Collectivite]:
    return search_collectivites(text, limit=SEARCH_LIMIT)


@bp.route("/inscription", methods=["GET", "POST"])
@registration_limit
def register():
    """Step 1: find the collectivité (GET ?q=…); step 2: the account form (?collectivite=<id>)."""
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    search = CollectiviteSearchForm(request.args)
    form = RegistrationForm()
    status = 200
    results = None
    if request.method == "GET" and "q" in request.args:
        found = search.validate()
        results = _search(search.q.data) if found else []
        status = 200 if found else 400
    chosen_id = form.collectivite_id.data or request.args.get("collectivite", "")
    collectivite_id = bounded_int(chosen_id)
    collectivite = db.session.get(Collectivite, collectivite_id) if collectivite_id else None
    if request.method == "GET" and collectivite is not None:
        form.collectivite_id.data = str(collectivite.id)
    if request.method == "POST":
        status = 400
        if collectivite is None:
            flash("Choisissez d'abord votre collectivité dans la liste.", "danger")
        elif form.validate_on_submit():
            try:
                error = perform(services.register_applicant, email=form.email.data,
                                full_name=form.full_name.data, password=form.password.data,
                                collectivite=collectivite, now=clock.now())
            except IntegrityError:  # the same form sent twice at once: the other one did it
                error = None
            if error is not None:
                form.email.errors = [*form.email.errors, error.message]
            else:
                # The same words whether the address was new or already had an account (its owner
                # is told by e-mail): the page does not tell who has an account.
                email = services.normalise_email(form.email.data)
                flash(f"Un message vient d'être envoyé à {email} : suivez les indications qu'il "
                      "contient. Pour un nouveau compte, cliquez sur le lien pour confirmer votre "
                      "adresse ; le compte doit ensuite être validé par la Région, ou par un agent de "
                      f"votre collectivité ({collectivite.name}) dont le compte est déjà validé : vous "
                      "recevrez un message dès que ce sera fait, et pourrez alors vous connecter.",
                      "success")
                return redirect(url_for("auth.login"))
    return render_template("auth/register.html", search=search, results=results, form=form,
                           collectivite=collectivite, search_limit=SEARCH_LIMIT), status


@bp.route("/inscription/confirmer/<token>")
def confirm(token: str):
    outcome = attempt(services.confirm_email, token, now=clock.now())
    if outcome.error is not None:
        return render_template("auth/message.html", title="Lien de confirmation", message=outcome.error.message,
                               category="danger", resend=True, resend_form=EmailForm(formdata=None)), 400
    user = outcome.value
    assert user is not None  # no refusal: confirm_email returned the account
    if user.role == "applicant" and user.approved_at is None:
        flash(f"Votre adresse {user.email} est confirmée. Votre compte doit encore être validé par la "
              f"Région, ou par un agent de votre collectivité ({user.applicant_collectivite.name}) dont le compte est déjà validé : "
              "vous recevrez un message dès que ce sera fait, et pourrez alors vous connecter.", "success")
    else:
        flash(f"Votre adresse {user.email} est confirmée : vous pouvez vous connecter.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/inscription/renvoyer", methods=["POST"])
@email_limit
def resend_confirmation():
    form = EmailForm()
    if not form.validate_on_submit():
        return render_template("auth/message.html", title="Lien de confirmation",
                               message=" ".join(form.email.errors) or "Adresse électronique invalide.",
                               category="danger", resend=True, resend_form=form), 400
    try:
        perform(services.resend_confirmation, form.email.data, now=clock.now())
    except IntegrityError:  # a double click queued the same message: one is enough
        pass
    flash("Si un compte non confirmé existe pour cette adresse, un nouveau lien de confirmation "
          "vient d'y être envoyé. Pensez à regarder dans les courriers indésirables.", "info")
    return redirect(url_for("auth.login"))


# --- password reset --------------------------------------------------------------------------------


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
@email_limit
def forgot_password():
    form = EmailForm()
    if form.validate_on_submit():
        try:
            perform(services.request_password_reset, form.email.data, now=clock.now())
        except IntegrityError:  # a double click queued the same message: one is enough
            pass
        flash("Si un compte existe pour cette adresse, un lien pour choisir un nouveau mot de passe "
              "vient d'y être envoyé. Il est valable une heure.", "info")
        return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/mot-de-passe/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        user = services.user_for_reset(token)
    except AccountError as refused:
        return render_template("auth/message.html", title="Lien de réinitialisation", message=str(refused),
                               category="danger", forgot=True), 400
    form = ResetPasswordForm(account_email=user.email)
    if form.validate_on_submit():
        if error := perform(services.reset_password, token, form.password.data, now=clock.now()):
            form.password.errors = [*form.password.errors, error.message]
        else:
            flash("Votre mot de passe est enregistré : connectez-vous avec le nouveau.", "success")
            return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, user=user), status


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """An invited person (staff, or an agent attached by an admin) chooses a password."""
    try:
        user = services.user_for_invitation(token)
    except AccountError as refused:
        return render_template("auth/message.html", title="Invitation", message=str(refused),
                               category="danger", forgot=True), 400
    form = ResetPasswordForm(account_email=user.email)
    form.submit.label.text = "Enregistrer mon mot de passe"
    if form.validate_on_submit():
        error = perform(services.accept_invitation, token, form.password.data, clock.now())
        if error is None:
            flash("Votre mot de passe est enregistré : connectez-vous.", "success")
            return redirect(url_for("auth.login"))
        form.password.errors = [*form.password.errors, str(error)]
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, user=user, invitation=True), status


# --- approval of new accounts by the agents of their collectivité --------------------------------


def access_requests() -> list[User]:
    """Accounts waiting for approval in the current user's collectivité, for the portal home
    (empty unless the current user is an approved agent)."""
    if not (current_user.is_authenticated and current_user.role == "applicant"
            and current_user.approved_at is not None):
        return []
    return services.pending_accounts(current_user.collectivite_id)


@bp.app_context_processor
def approval_helpers():
    return {"access_requests": access_requests, "refusal_reason_max": services.REFUSAL_REASON_MAX}


def _colleague_request(user_id: int) -> User:
    """A pending account of the current agent's collectivité: 403 for staff (the admins have their
    own page), 404 for an account of another collectivité (its existence is not told)."""
    if current_user.role != "applicant":
        abort(403)
    user = db.session.get(User, user_id)
    if user is None or user.role != "applicant" or user.collectivite_id != current_user.collectivite_id:
        abort(404)
    return user


def decide(operation, user: User, *args):
    """Run an approval service through ``perform``; a refusal comes back (after a rollback)."""
    try:
        return perform(operation, user, current_user._get_current_object(), *args, now=clock.now())
    except IntegrityError:  # the same decision queued twice at once: the other request won
        return services.AlreadyDecided(f"Le compte de {user.full_name} a déjà été validé ou refusé.")


def decision_answer(error: services.AccountError, back: str):
    """How a refused decision is answered: a double click (already decided) goes back with an
    info message; anything else is an error page with the French reason."""
    if isinstance(error, services.AlreadyDecided):
        flash(str(error), "info")
        return redirect(back)
    title = {403: "Accès refusé", 400: "Demande incomplète"}.get(error.status, "Action impossible")
    return render_template("errors/error.html", code=error.status, title=title,
                           message=str(error)), error.status


def refusal_form_problem(form: RefusalForm) -> str:
    return " ".join(form.reason.errors) or "Le formulaire n'est pas valide : rechargez la page et recommencez."


def _portal_back() -> str:
    return url_for("portal.index", _anchor="demandes-acces")


@bp.route("/portail/demandes-d-acces/<int:user_id>/valider", methods=["POST"])
@login_required
def approve_access(user_id: int):
    user = _colleague_request(user_id)
    if not ApprovalForm().validate_on_submit():
        abort(400)
    error = decide(services.approve_account, user)
    if error is not None:
        return decision_answer(error, _portal_back())
    flash(f"Le compte de {user.full_name} ({user.email}) est validé : un message l'en informe.", "success")
    return redirect(_portal_back())


@bp.route("/portail/demandes-d-acces/<int:user_id>/refuser", methods=["POST"])
@login_required
def refuse_access(user_id: int):
    user = _colleague_request(user_id)
    form = RefusalForm()
    if not form.validate_on_submit():
        return decision_answer(services.AccountError(refusal_form_problem(form)), _portal_back())
    error = decide(services.refuse_account, user, form.reason.data)
    if error is not None:
        return decision_answer(error, _portal_back())
    flash(f"La demande d'accès de {user.full_name} ({user.email}) est refusée : un message lui en donne "
          "le motif.", "success")
    return redirect(_portal_back())


# --- second factor (staff) -----------------------------------------------------------------------

PENDING = "second_factor"  # session key: the login waiting for its second factor
PENDING_MAX_AGE = 600  # seconds to type the code once the password was right
ENROL_SECRET = "second_factor_secret"  # session key: the secret being enrolled, until confirmed


def start_second_factor(user: User, *, remember: bool, target: str | None):
    """The password was right: remember who is signing in (signed session, 10 minutes), then ask
    for the code, or, for an admin without it, enrol first."""
    session.pop(ENROL_SECRET, None)
    session[PENDING] = {"user": user.get_id(), "remember": bool(remember), "next": target,
                        "since": int(clock.now().timestamp())}
    endpoint = "auth.enrol_second_factor" if two_factor.must_enrol(user) else "auth.second_factor"
    return redirect(url_for(endpoint))


def pending_user() -> User | None:
    data = session.get(PENDING)
    if not isinstance(data, dict) or clock.now().timestamp() - data.get("since", 0) > PENDING_MAX_AGE:
        return None
    parsed = parse_session_id(str(data.get("user", "")))
    if parsed is None:
        return None
    user = db.session.get(User, parsed[0])
    if user is None or not user.active or user.session_version != parsed[1]:
        return None
    return user


def _no_pending_login():
    session.pop(PENDING, None)
    flash("Votre connexion a expiré : saisissez à nouveau votre adresse et votre mot de passe.", "warning")
    return redirect(url_for("auth.login"))


def finish_login(user: User):
    data = session.pop(PENDING)
    session.pop(ENROL_SECRET, None)
    perform(services.record_login, user, now=clock.now())
    login_user(user, remember=data.get("remember", False))
    flash(f"Bienvenue, {user.full_name}.", "success")
    return data.get("next") or _home_for(user)


@bp.route("/connexion/code", methods=["GET", "POST"])
@second_factor_limit
def second_factor():
    user = pending_user()
    if user is None or two_factor.must_enrol(user):
        return _no_pending_login()
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        if attempt(two_factor.verify, user, form.code.data, now=clock.now()).value:
            return redirect(finish_login(user))
        form.code.errors = [*form.code.errors, "Code incorrect ou déjà utilisé : tapez le code affiché "
                                               "en ce moment par votre application."]
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/second_factor.html", form=form), status


def enrolment_secret() -> str:
    secret = session.get(ENROL_SECRET)
    if not isinstance(secret, str) or len(secret) != 32:
        secret = session[ENROL_SECRET] = two_factor.new_secret()
    return secret


def render_enrolment(user: User, form: CodeForm, action: str, status: int = 200):
    secret = enrolment_secret()
    return render_template("auth/enrol.html", form=form, action=action, secret=secret,
                           grouped=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)),
                           qr=two_factor.qr_svg(two_factor.provisioning_uri(user, secret))), status


def enable_second_factor(user: User, form: CodeForm) -> list[str] | str:
    """Confirm the enrolment with the code typed: the recovery codes, or the French problem."""
    codes: list[str] = []
    secret = enrolment_secret()
    error = perform(lambda: codes.extend(two_factor.enable(user, secret, form.code.data, now=clock.now())))
    if error is not None:
        return error.message
    session.pop(ENROL_SECRET, None)
    return codes


@bp.route("/connexion/double-authentification", methods=["GET", "POST"])
@second_factor_limit
def enrol_second_factor():
    """Admins enrol at their first login: the login completes once the app gives a right code."""
    user = pending_user()
    if user is None or not two_factor.must_enrol(user):
        return _no_pending_login()
    form = CodeForm()
    action = url_for("auth.enrol_second_factor")
    if not form.validate_on_submit():
        return render_enrolment(user, form, action, 400 if request.method == "POST" else 200)
    result = enable_second_factor(user, form)
    if isinstance(result, str):
        form.code.errors = [*form.code.errors, result]
        return render_enrolment(user, form, action, 401)
    target = finish_login(user)
    return render_template("auth/recovery_codes.html", codes=result, target=target)
