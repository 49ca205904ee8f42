"""Administration pages of the territory (routes of the ``admin`` blueprint, admins only)."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from instruction import clock
from instruction.accounts.models import User
from instruction.admin import people
from instruction.admin import territory as operations
from instruction.admin.forms import (
    AgentForm,
    ConfirmForm,
    CsvForm,
    ReferenceFileForm,
    SearchForm,
    SivosForm,
    VilleCentreForm,
)
from instruction.admin.views import _answer, bp
from instruction.extensions import db
from instruction.territory import services as territory
from instruction.territory.models import Collectivite, Epci, Sivos
from instruction.web.actions import perform

SEARCH_LIMIT = 50


def _collectivite(collectivite_id: int) -> Collectivite:
    found = db.session.get(Collectivite, collectivite_id)
    if found is None:
        abort(404)
    return found


def _territory_page(csv_form: CsvForm | None = None, problems: list[str] | None = None, status: int = 200):
    form = SearchForm(request.args)
    kind = form.kind.data if form.kind.data in ("commune", "epci", "sivos") else None
    results = territory.search_collectivites(form.q.data or "", limit=SEARCH_LIMIT, kind=kind)
    sivos = db.session.scalars(db.select(Sivos).order_by(Sivos.name)).all()
    return render_template("admin/territory.html", form=form, results=results, searched=bool(form.q.data),
                           sivos=sivos, csv_form=csv_form or CsvForm(formdata=None), problems=problems or [],
                           reference_form=ReferenceFileForm(formdata=None)), status


@bp.route("/territoire")
def territory_home():
    return _territory_page()


@bp.route("/territoire/<int:collectivite_id>")
def collectivite(collectivite_id: int):
    return _collectivite_page(_collectivite(collectivite_id))


def _collectivite_page(c: Collectivite, agent_form: AgentForm | None = None, status: int = 200):
    ville_form = None
    members = []
    if isinstance(c, Epci):
        members = territory.member_communes(c)
        ville_form = VilleCentreForm(formdata=None, commune=c.ville_centre_id)
        ville_form.commune.choices = [(m.id, f"{m.name} ({m.population or 0} hab.)") for m in members]
    return render_template("admin/collectivite.html", c=c, members=members, ville_form=ville_form,
                           agents=people.agents_of(c), agent_form=agent_form or AgentForm(formdata=None),
                           pending=people.accounts.invitation_pending), status


def _sivos_form_page(form: SivosForm, sivos: Sivos | None, status: int = 200):
    return render_template("admin/sivos_form.html", form=form, sivos=sivos), status


@bp.route("/territoire/sivos/nouveau", methods=["GET", "POST"])
def new_sivos():
    form = SivosForm()
    if request.method == "GET":
        return _sivos_form_page(form, None)
    if not form.validate_on_submit():
        return _sivos_form_page(form, None, 400)
    created: list[Sivos] = []
    error = perform(lambda: created.append(operations.create_sivos(
        current_user, siren=form.siren.data, name=form.name.data, communes=form.communes.data,
        epci_siren=form.epci.data or None, now=clock.now())))
    if error is not None:
        form.communes.errors = [str(error)]
        return _sivos_form_page(form, None, error.status)
    flash(f"Le SIVOS {form.name.data} est créé.", "success")
    return redirect(url_for("admin.collectivite", collectivite_id=created[0].id))


@bp.route("/territoire/sivos/<int:collectivite_id>/modifier", methods=["GET", "POST"])
def edit_sivos(collectivite_id: int):
    sivos = _collectivite(collectivite_id)
    if not isinstance(sivos, Sivos):
        abort(404)
    if request.method == "GET":
        form = SivosForm(formdata=None, name=sivos.name, siren=sivos.siren, epci=sivos.epci.siren if sivos.epci else "",
                         communes=" ".join(sorted(c.code for c in sivos.members)))
        return _sivos_form_page(form, sivos)
    form = SivosForm()
    if not form.validate_on_submit():
        return _sivos_form_page(form, sivos, 400)
    error = perform(operations.update_sivos, current_user, sivos, siren=form.siren.data, name=form.name.data,
                    communes=form.communes.data, epci_siren=form.epci.data or None, now=clock.now())
    if error is not None:
        form.communes.errors = [str(error)]
        return _sivos_form_page(form, sivos, error.status)
    flash(f"Le SIVOS {form.name.data} est modifié.", "success")
    return redirect(url_for("admin.collectivite", collectivite_id=sivos.id))


@bp.route("/territoire/sivos/import", methods=["POST"])
def import_sivos():
    form = CsvForm()
    if not form.validate_on_submit():
        return _territory_page(form, status=400)
    upload = form.file.data
    content = upload.read(2 * 1024 * 1024 + 1)
    if len(content) > 2 * 1024 * 1024:
        return _territory_page(form, ["Le fichier dépasse 2 Mo."], 400)
    created: list = []
    error = perform(lambda: created.extend(operations.import_sivos(
        current_user, content, filename=upload.filename or "fichier.csv", now=clock.now())))
    if isinstance(error, territory.SivosImportError):
        return _territory_page(form, error.problems, 400)
    if error is not None:
        return _territory_page(form, [str(error)], error.status)
    flash(f"{len(created)} SIVOS importé{'s' if len(created) > 1 else ''}.", "success")
    return redirect(url_for("admin.territory_home"))


@bp.route("/territoire/epci/<int:collectivite_id>/ville-centre", methods=["POST"])
def change_ville_centre(collectivite_id: int):
    epci = _collectivite(collectivite_id)
    if not isinstance(epci, Epci):
        abort(404)
    form = VilleCentreForm()
    form.commune.choices = [(m.id, m.name) for m in territory.member_communes(epci)]
    if not form.validate_on_submit():
        abort(400, "Choisissez une commune membre de l'EPCI.")
    error = perform(operations.change_ville_centre, current_user, epci, form.commune.data, now=clock.now())
    back = url_for("admin.collectivite", collectivite_id=epci.id)
    return _answer(error, back, f"La ville centre de {epci.name} est désormais "
                                f"{epci.ville_centre.name if epci.ville_centre else ''}.")


@bp.route("/territoire/<int:collectivite_id>/agents", methods=["POST"])
def attach_agent(collectivite_id: int):
    c = _collectivite(collectivite_id)
    form = AgentForm()
    if not form.validate_on_submit():
        return _collectivite_page(c, form, 400)
    error = perform(people.attach_agent, current_user, c, email=form.email.data, full_name=form.full_name.data,
                    now=clock.now())
    if error is not None and error.status == 400:
        form.email.errors = [str(error)]
        return _collectivite_page(c, form, 400)
    return _answer(error, url_for("admin.collectivite", collectivite_id=c.id),
                   f"{form.email.data} est rattaché à {c.name} (une invitation part s'il n'avait pas de compte).")


@bp.route("/territoire/agents/<int:user_id>/detacher", methods=["POST"])
def detach_agent(user_id: int):
    user = db.session.get(User, user_id)
    if user is None or user.role != "applicant":
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    back = url_for("admin.collectivite", collectivite_id=user.collectivite_id)
    error = perform(people.detach_agent, current_user, user, now=clock.now())
    return _answer(error, back, f"{user.full_name} n'a plus accès aux dossiers de {user.applicant_collectivite.name} "
                                "(compte désactivé, historique conservé).")


# --- reference data ------------------------------------------------------------------------------


def _uploads():
    return operations.upload_folder(current_app.instance_path)


@bp.route("/territoire/referentiel", methods=["POST"])
def territory_preview():
    form = ReferenceFileForm()
    if not form.validate_on_submit():
        return _territory_page(status=400, problems=[e for f in form for e in f.errors])
    content = form.file.data.read(50 * 1024 * 1024 + 1)
    try:
        if len(content) > 50 * 1024 * 1024:
            raise territory.TerritoryError("Le fichier dépasse 50 Mo.")
        digest = operations.store_upload(_uploads(), content)
        changes = operations.preview(content)
    except territory.TerritoryError as error:
        return _territory_page(status=400, problems=[str(error)])
    return render_template("admin/territory_preview.html", preview=changes, digest=digest,
                           thresholds=operations.population_thresholds(), confirm_form=ConfirmForm(formdata=None))


@bp.route("/territoire/referentiel/appliquer", methods=["POST"])
def territory_apply():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        content = operations.stored_upload(_uploads(), request.form.get("digest", ""))
    except territory.TerritoryError as refused:
        return _territory_page(status=400, problems=[str(refused)])
    reports: list = []
    error = perform(lambda: reports.append(operations.refresh_territory(current_user, content, now=clock.now())))
    if error is not None:
        return _territory_page(status=error.status, problems=[str(error)])
    flash("Données de référence mises à jour : " + " ; ".join(reports[0].lines()) + ".", "success")
    return redirect(url_for("admin.territory_home"))
