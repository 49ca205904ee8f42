"""The applicant portal: aids, dossiers, expense lines, documents, submission, follow-up.

Views validate forms and call services (``portal.services`` for editing, ``dossiers.services``
for state changes, through ``web.actions.perform``). "Now" always comes from ``instruction.clock``.
A second POST of the same action (a double click) is answered with a redirect and an info
message, never with an error page.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer

from instruction import clock, rules
from instruction.campaigns.services import current_campaign
from instruction.documents import services as documents
from instruction.dossiers import services as dossier_services
from instruction.dossiers.access import visible_dossier, visible_dossiers
from instruction.dossiers.models import Document, Dossier, ExpenseLine
from instruction.dossiers.services import WorkflowError
from instruction.dossiers.workflow import available_actions, deadline_of
from instruction.extensions import db
from instruction.portal import services, texts
from instruction.portal.forms import (
    MAX_MONTHS,
    ConfirmForm,
    LineForm,
    NewDossierForm,
    ResubmitForm,
    SubmitForm,
    TitleForm,
    UploadForm,
    WithdrawForm,
    parse_amount,
)
from instruction.storage.files import remove_files
from instruction.teamwork import services as teamwork
from instruction.teamwork.forms import MessageForm
from instruction.web.access import found_or_404
from instruction.web.actions import attempt, perform
from instruction.web.numbers import bounded_int

DOSSIERS_PER_PAGE = 50

bp = Blueprint("portal", __name__, url_prefix="/portail")


def _dossier_url(dossier: Dossier, anchor: str | None = None) -> str:
    return url_for("portal.dossier", dossier_id=dossier.id, _anchor=anchor)


def _applicant_dossier(dossier_id: int) -> Dossier:
    """The dossier, for an applicant of its collectivité (404 if not visible, 403 for staff)."""
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    if current_user.role != "applicant":
        abort(403)
    return dossier


def _line_of(dossier: Dossier, line_id: int) -> ExpenseLine:
    line = db.session.get(ExpenseLine, line_id)
    if line is None or line.dossier_id != dossier.id:
        abort(404)
    return line


def _max_upload() -> int:
    return current_app.config["MAX_UPLOAD_BYTES"]


def received_files(field_name: str) -> list[tuple[str | None, bytes]]:
    limit = _max_upload()
    return [(f.filename, documents.read_upload(f, limit))
            for f in request.files.getlist(field_name) if f is not None and f.filename]


@bp.errorhandler(413)
def too_large(error):
    limit = documents.megabytes(_max_upload())
    return render_template(
        "errors/error.html", code=413, title="Envoi trop volumineux",
        message=f"L'envoi dépasse la taille autorisée. Chaque fichier doit faire au plus {limit} : "
                f"revenez à la page précédente et envoyez les fichiers un par un. Rien n'a été perdu "
                f"de ce qui était déjà enregistré."), 413


# --- home: which aids can I ask for? ---------------------------------------------------------------


@bp.route("/")
@login_required
def index():
    if current_user.role != "applicant":
        return redirect(url_for("backoffice.queue"))
    return _render_index()


def _render_index(status: int = 200, error: str | None = None):
    now = clock.now()
    campaign = current_campaign()
    collectivite = current_user.collectivite
    overview, window, forms = [], None, {}
    if campaign is not None:
        overview = services.aid_overview(collectivite, campaign, now)
        window = services.window_problem(campaign, now)
        forms = {aid.number: NewDossierForm(formdata=None, aid_number=aid.number,
                                            client_token=services.new_client_token())
                 for aid in overview}
    # The most recently updated first, a page at a time (a busy collectivité has hundreds).
    dossiers = db.paginate(visible_dossiers(current_user, select(Dossier).options(defer(Dossier.evaluation)))
                           .order_by(Dossier.updated_at.desc(), Dossier.id.desc()),
                           page=bounded_int(request.args.get("page"), high=10**6) or 1,
                           per_page=DOSSIERS_PER_PAGE, error_out=False, count=True)
    return render_template(
        "portal/index.html", campaign=campaign, collectivite=collectivite, overview=overview,
        window=window, forms=forms, dossiers=dossiers, error=error, now=now,
        waiting=teamwork.waiting_for_applicant(dossiers.items), delete_form=ConfirmForm(formdata=None),
        last_minute=texts.last_minute(campaign.deadline_at) if campaign else None,
        time_left=texts.time_left(campaign.deadline_at, now) if campaign else None,
    ), status


@bp.route("/dossiers", methods=["POST"])
@login_required
def create():
    if current_user.role != "applicant":
        abort(403)
    form = NewDossierForm()
    campaign = current_campaign()
    aid_number = bounded_int(form.aid_number.data)
    if not form.validate_on_submit() or aid_number is None or campaign is None:
        return _render_index(400, "Le formulaire est incomplet : rechargez la page puis recommencez.")
    arguments = {"campaign": campaign, "aid_number": aid_number, "actor": current_user,
                 "client_token": form.client_token.data, "title": form.title.data or "", "now": clock.now()}
    try:
        outcome = attempt(services.create_draft_once, **arguments)
    except IntegrityError:  # the same form, committed at the same moment by another request
        outcome = attempt(services.create_draft_once, **arguments)  # which finds that draft
    if outcome.error is not None:
        return _render_index(outcome.error.status, outcome.error.message)
    dossier, created = outcome.value
    if created:
        flash("Brouillon créé. Déclarez maintenant vos dépenses et joignez vos factures ou devis.", "success")
    else:
        flash("Ce dossier était déjà créé (le formulaire a été envoyé deux fois) : le voici.", "info")
    return redirect(_dossier_url(dossier))


# --- the dossier page --------------------------------------------------------------------------------


@bp.route("/dossiers/<int:dossier_id>")
@login_required
def dossier(dossier_id: int):
    """An agent opening the page reads the Region's messages (their read receipt)."""
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    page, status = render_dossier(dossier)
    if current_user.role == "applicant":
        perform(teamwork.mark_read, dossier, current_user, now=clock.now())
    return page, status


def render_dossier(dossier: Dossier, status: int = 200, *, error: str | None = None,
                   line_form: LineForm | None = None, upload_errors: list[str] | None = None,
                   upload_line_id: int | None = None, resubmit_form: ResubmitForm | None = None,
                   withdraw_form: WithdrawForm | None = None, title_form: TitleForm | None = None,
                   message_form: MessageForm | None = None):
    now = clock.now()
    is_applicant = current_user.role == "applicant"
    editable = is_applicant and dossier.state in services.EDITABLE_STATES
    options = services.line_options(dossier, now)
    actions = {}
    if is_applicant:
        ctx = dossier_services.context_for(current_user, now)
        actions = {a.transition.action: a for a in available_actions(dossier, ctx)}
    estimation = services.estimate(dossier, now) if dossier.state in services.EDITABLE_STATES else None
    requests = [m for m in dossier.messages if m.kind == "request_documents"]
    resubmit_form = resubmit_form or ResubmitForm(formdata=None)
    resubmit_form.line_id.choices = [("", "Au dossier en général"),
                                     *[(str(line.id), f"Dépense n°{i} : {line.label}")
                                       for i, line in enumerate(dossier.lines, start=1)]]
    return render_template(
        "portal/dossier.html", dossier=dossier, now=now, editable=editable, is_applicant=is_applicant,
        options=options, actions=actions, estimation=estimation,
        problems=services.submission_problems(dossier, current_user, now, estimation) if is_applicant else [],
        explanation=texts.STATE_EXPLANATIONS[dossier.state],
        events=services.visible_events(dossier), event_labels=texts.EVENT_LABELS,
        last_request=requests[-1] if requests else None,
        line_form=line_form or LineForm(formdata=None, options=options),
        upload_form=UploadForm(formdata=None), upload_errors=upload_errors or [],
        upload_line_id=upload_line_id, submit_form=SubmitForm(formdata=None),
        resubmit_form=resubmit_form, withdraw_form=withdraw_form or WithdrawForm(formdata=None),
        title_form=title_form or TitleForm(formdata=None, title=dossier.title),
        confirm_form=ConfirmForm(formdata=None), error=error,
        removable={d.id for d in dossier.documents if services.document_removable(dossier, d)},
        last_minute=texts.last_minute(deadline_of(dossier)),
        time_left=texts.time_left(deadline_of(dossier), now),
        max_upload=documents.megabytes(_max_upload()),
        message_form=message_form or MessageForm(formdata=None),
        can_write=is_applicant and dossier.state != "draft",
    ), status


@bp.route("/dossiers/<int:dossier_id>/intitule", methods=["POST"])
@login_required
def rename(dossier_id: int):
    dossier = _applicant_dossier(dossier_id)
    form = TitleForm()
    if not form.validate_on_submit():
        return render_dossier(dossier, 400, title_form=form)
    if error := perform(services.rename, dossier, current_user, form.title.data or "", now=clock.now()):
        return render_dossier(dossier, error.status, error=error.message)
    flash("Intitulé enregistré.", "success")
    return redirect(_dossier_url(dossier))


# --- expense lines -------------------------------------------------------------------------------


def _line_values(form: LineForm) -> dict:
    return {"category": form.category.data, "label": form.label.data, "amount_ht": form.amount_ht.data,
            "pack": form.pack.data if form.pack is not None else None,
            "months": form.months.data if form.months is not None else None}


@bp.route("/dossiers/<int:dossier_id>/depenses", methods=["POST"])
@login_required
def add_line(dossier_id: int):
    dossier = _applicant_dossier(dossier_id)
    form = LineForm(options=services.line_options(dossier, clock.now()))
    if not form.validate_on_submit():
        return render_dossier(dossier, 400, line_form=form)
    if error := perform(services.save_line, dossier, current_user, now=clock.now(), **_line_values(form)):
        return render_dossier(dossier, error.status, error=error.message, line_form=form)
    flash("Dépense enregistrée. Joignez-y maintenant la facture ou le devis.", "success")
    return redirect(_dossier_url(dossier, "depenses"))


@bp.route("/dossiers/<int:dossier_id>/depenses/<int:line_id>", methods=["GET", "POST"])
@login_required
def edit_line(dossier_id: int, line_id: int):
    dossier = _applicant_dossier(dossier_id)
    line = _line_of(dossier, line_id)
    if dossier.state not in services.EDITABLE_STATES:
        flash("Le dossier a été déposé : ses dépenses ne peuvent plus être modifiées.", "info")
        return redirect(_dossier_url(dossier))
    options = services.line_options(dossier, clock.now())
    form = LineForm(obj=line, options=options)
    status = 200
    if form.validate_on_submit():
        error = perform(services.save_line, dossier, current_user, line=line, now=clock.now(),
                        **_line_values(form))
        if error is None:
            flash("Dépense modifiée.", "success")
            return redirect(_dossier_url(dossier, "depenses"))
        flash(error.message, "danger")
        status = error.status
    elif request.method == "POST":
        status = 400
    return render_template("portal/line.html", dossier=dossier, line=line, form=form), status


@bp.route("/dossiers/<int:dossier_id>/depenses/<int:line_id>/supprimer", methods=["POST"])
@login_required
def remove_line(dossier_id: int, line_id: int):
    dossier = _applicant_dossier(dossier_id)
    line = db.session.get(ExpenseLine, line_id)
    if line is None or line.dossier_id != dossier.id:
        flash("Cette dépense a déjà été supprimée.", "info")  # a double click
        return redirect(_dossier_url(dossier, "depenses"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    removed: list[str] = []
    if error := perform(lambda: removed.extend(services.remove_line(dossier, line, current_user,
                                                                     now=clock.now()))):
        return render_dossier(dossier, error.status, error=error.message)
    remove_files(removed)
    flash("Dépense supprimée.", "success")
    return redirect(_dossier_url(dossier, "depenses"))


# --- documents -----------------------------------------------------------------------------------


def _upload(dossier: Dossier, line: ExpenseLine | None, field_name: str):
    """Store the accepted files; returns (stored, rejected messages) or a WorkflowError."""
    outcome = attempt(services.attach_files, dossier, current_user, received_files(field_name), line=line,
                      max_bytes=_max_upload(), now=clock.now())
    return outcome.error or outcome.value


@bp.route("/dossiers/<int:dossier_id>/depenses/<int:line_id>/pieces", methods=["POST"])
@login_required
def upload(dossier_id: int, line_id: int):
    dossier = _applicant_dossier(dossier_id)
    line = _line_of(dossier, line_id)
    form = UploadForm()
    if not form.validate_on_submit():
        abort(400)
    if not any(f.filename for f in request.files.getlist("files")):
        return render_dossier(dossier, 400, upload_line_id=line.id, upload_errors=[
            "Choisissez au moins un fichier (bouton « Parcourir » ou « Choisir des fichiers »)."])
    result = _upload(dossier, line, "files")
    if isinstance(result, WorkflowError):
        return render_dossier(dossier, result.status, error=result.message)
    for document in result.stored:
        flash(f"« {document.original_name} » est joint à la dépense « {line.label} ».", "success")
    if result.rejected:
        return render_dossier(dossier, 400, upload_line_id=line.id, upload_errors=result.rejected)
    return redirect(_dossier_url(dossier, f"depense-{line.id}"))


@bp.route("/dossiers/<int:dossier_id>/pieces/<int:document_id>/supprimer", methods=["POST"])
@login_required
def remove_document(dossier_id: int, document_id: int):
    dossier = _applicant_dossier(dossier_id)
    document = db.session.get(Document, document_id)
    if document is None or document.dossier_id != dossier.id:
        flash("Cette pièce a déjà été retirée.", "info")
        return redirect(_dossier_url(dossier, "depenses"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    removed: list[str] = []
    if error := perform(lambda: removed.append(services.remove_document(dossier, document, current_user,
                                                                         now=clock.now()))):
        return render_dossier(dossier, error.status, error=error.message)
    remove_files(removed)
    flash("Pièce retirée.", "success")
    return redirect(_dossier_url(dossier, "depenses"))


# --- live estimation -----------------------------------------------------------------------------


@bp.route("/dossiers/<int:dossier_id>/estimation")
@login_required
def estimation(dossier_id: int):
    """The rules' decision now, as JSON; with ``category``, ``amount_ht`` (and ``pack``,
    ``months``) in the query, the line being typed is counted in."""
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    now = clock.now()
    extra, candidate_error = None, None
    args = request.args
    if args.get("category") or args.get("amount_ht"):
        options = services.line_options(dossier, now)
        try:
            if args.get("category") not in dict(options.categories):
                raise ValueError("Choisissez une catégorie.")
            pack = bounded_int(args.get("pack"))
            months = bounded_int(args.get("months"), high=MAX_MONTHS)
            extra = rules.ExpenseLine(category=args["category"], amount_ht=parse_amount(args.get("amount_ht")),
                                      label=args.get("label", "")[:300], pack=pack or None,
                                      months=(months or None) if args["category"] == "licence" else None)
        except ValueError as error:
            candidate_error = str(error)
    decision = services.estimate(dossier, now, extra)
    return jsonify({**services.decision_json(decision), "with_candidate": extra is not None,
                    "candidate_error": candidate_error})


# --- state changes: submit, resubmit, withdraw ---------------------------------------------------


def _just_resubmitted(dossier: Dossier) -> bool:
    return bool(dossier.events) and dossier.events[-1].action == "resubmit"


def _already_done(dossier: Dossier, message: str):
    flash(message, "info")
    return redirect(_dossier_url(dossier))


@bp.route("/dossiers/<int:dossier_id>/deposer", methods=["POST"])
@login_required
def submit(dossier_id: int):
    dossier = _applicant_dossier(dossier_id)
    if not SubmitForm().validate_on_submit():
        abort(400)
    if dossier.state != "draft" and dossier.submitted_at is not None:
        return _already_done(dossier, "Ce dossier est déjà déposé : la Région l'a bien reçu.")
    if error := perform(dossier_services.submit, dossier, current_user, now=clock.now()):
        if dossier.state != "draft" and dossier.submitted_at is not None:  # deposited meanwhile
            return _already_done(dossier, "Ce dossier est déjà déposé : la Région l'a bien reçu.")
        return render_dossier(dossier, error.status, error=error.message)
    flash("Votre dossier est déposé : la Région l'a bien reçu. Un accusé de réception vous est envoyé "
          "par courriel.", "success")
    return redirect(_dossier_url(dossier))


@bp.route("/dossiers/<int:dossier_id>/completer", methods=["POST"])
@login_required
def resubmit(dossier_id: int):
    dossier = _applicant_dossier(dossier_id)
    if dossier.state != "incomplete":
        if _just_resubmitted(dossier):
            return _already_done(dossier, "Ce dossier a déjà été renvoyé à l'instructeur.")
        return render_dossier(dossier, 409, error="Aucun complément n'est demandé sur ce dossier.")
    form = ResubmitForm()
    form.line_id.choices = [("", ""), *[(str(line.id), line.label) for line in dossier.lines]]
    if not form.validate_on_submit():
        return render_dossier(dossier, 400, resubmit_form=form)
    line = _line_of(dossier, form.line_id.data) if form.line_id.data else None
    has_files = any(f.filename for f in request.files.getlist(form.files.name))
    if not has_files and not form.message.data:
        form.message.errors.append("Répondez à la demande : écrivez un message ou joignez une pièce.")
        return render_dossier(dossier, 400, resubmit_form=form)
    files = received_files(form.files.name) if has_files else []
    error = perform(services.answer_request, dossier, current_user, files, line=line,
                    message=form.message.data or "", max_bytes=_max_upload(), now=clock.now())
    if isinstance(error, services.FilesRejected):
        return render_dossier(dossier, 400, resubmit_form=form, upload_errors=[
            *error.rejected, "Rien n'a été envoyé : retirez ou corrigez le fichier refusé, puis renvoyez."])
    if error:
        if dossier.state != "incomplete" and _just_resubmitted(dossier):
            return _already_done(dossier, "Ce dossier a déjà été renvoyé à l'instructeur.")
        return render_dossier(dossier, error.status, error=error.message, resubmit_form=form)
    flash("Votre réponse et le dossier complété sont transmis à l'instructeur.", "success")
    return redirect(_dossier_url(dossier))


@bp.route("/dossiers/<int:dossier_id>/supprimer", methods=["POST"])
@login_required
def delete_draft(dossier_id: int):
    """Delete a draft (never a submitted dossier: the Region keeps what it received)."""
    if current_user.role != "applicant":
        abort(403)
    dossier = db.session.get(Dossier, dossier_id)
    if dossier is None or (dossier.discarded_at is not None and dossier.collectivite_id == current_user.collectivite_id):
        flash("Ce brouillon a déjà été supprimé.", "info")  # a double click
        return redirect(url_for("portal.index"))
    dossier = found_or_404(visible_dossier(current_user, dossier_id))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    removed: list[str] = []
    if error := perform(lambda: removed.extend(services.delete_draft(dossier, current_user, now=clock.now()))):
        return render_dossier(dossier, error.status, error=error.message)
    remove_files(removed)
    flash("Le brouillon est supprimé.", "success")
    return redirect(url_for("portal.index"))


@bp.route("/dossiers/<int:dossier_id>/retirer", methods=["POST"])
@login_required
def withdraw(dossier_id: int):
    dossier = _applicant_dossier(dossier_id)
    if dossier.state == "withdrawn":
        return _already_done(dossier, "Ce dossier est déjà retiré.")
    form = WithdrawForm()
    if not form.validate_on_submit():
        return render_dossier(dossier, 400, withdraw_form=form)
    if error := perform(dossier_services.withdraw, dossier, current_user, form.reason.data, now=clock.now()):
        if dossier.state == "withdrawn":
            return _already_done(dossier, "Ce dossier est déjà retiré.")
        return render_dossier(dossier, error.status, error=error.message, withdraw_form=form)
    flash("Le dossier est retiré. Il reste consultable ici.", "success")
    return redirect(_dossier_url(dossier))
