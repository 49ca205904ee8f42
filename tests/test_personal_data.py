"""Data protection (issue 13, point 6): an admin exports what is held on one person and erases it by
pseudonymisation without breaking the audit chain; files of dossiers closed longer than the
retention period are purged by a nightly job that leaves an audit event, idempotently."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from instruction.accounts.models import User
from instruction.audit.services import verify_chain
from instruction.documents.retention import purge_closed_dossier_files
from instruction.dossiers.models import AuditEvent, Document
from instruction.notifications.models import Delivery
from instruction.storage.files import path_for
from tests import factories
from tests.factories import NOW


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def agent_with_history(session):
    """An agent of the EPCI who created and submitted a dossier (audit events, e-mails)."""
    agent = factories.user("applicant", collectivite=factories.epci(), full_name="Claire Martin",
                           email="claire.martin@plaine-dijonnaise.fr")
    session.flush()
    dossier = factories.dossier("received", collectivite=agent.collectivite)
    session.commit()
    return agent, dossier


def test_an_admin_exports_the_personal_data_of_one_agent(client, session):
    agent, dossier = agent_with_history(session)
    admin = factories.staff_logged_in(client, session, "admin")
    people = client.get("/administration/personnes", query_string={"role": "applicant"}).get_data(as_text=True)
    assert f'href="/administration/personnes/{agent.id}/donnees-personnelles"' in people or "Exporter ses données" in people
    response = client.get(f"/administration/personnes/{agent.id}/donnees-personnelles")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == f'attachment; filename="donnees-personnelles-{agent.id}.json"'
    data = json.loads(response.get_data(as_text=True))
    assert data["compte"]["adresse_electronique"] == "claire.martin@plaine-dijonnaise.fr"
    assert data["compte"]["nom"] == "Claire Martin"
    assert data["compte"]["collectivite"]["code"] == "200000925"
    assert [d["reference"] for d in data["dossiers_crees"]] == [dossier.reference]
    assert {"create", "submit"} <= {a["action"] for a in data["actions_journalisees"]}
    assert "submit" in {c["type"] for c in data["courriels"]}
    # The export itself is journalled, without the person's name.
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "export_personal_data"))
    assert event.actor_id == admin.id and event.subject_id == agent.id and "Claire" not in event.subject_label


def test_only_admins_export_or_erase(client, session):
    agent, _ = agent_with_history(session)
    factories.staff_logged_in(client, session, "instructor")
    assert client.get(f"/administration/personnes/{agent.id}/donnees-personnelles").status_code == 403
    assert client.post(f"/administration/personnes/{agent.id}/effacer").status_code == 403


def test_erasure_pseudonymises_the_account_and_keeps_the_audit_chain(app, client, session):
    agent, dossier = agent_with_history(session)
    factories.log_in(client, agent)
    agent_session = client.get_cookie("session").value
    events_before = session.execute(select(AuditEvent.id, AuditEvent.hash, AuditEvent.actor_id)
                                    .order_by(AuditEvent.id)).all()
    assert verify_chain().ok
    client.post("/deconnexion")

    admin_client = app.test_client()
    factories.staff_logged_in(admin_client, session, "admin")
    response = admin_client.post(f"/administration/personnes/{agent.id}/effacer",
                                 data={"reason": "Demande d'effacement du 27 novembre"})
    assert response.status_code == 302
    assert f"Personne effacée n° {agent.id}" in text(admin_client.get("/administration/personnes"))

    session.expire_all()
    erased = session.get(User, agent.id)
    assert erased.full_name == f"Personne effacée n° {agent.id}"
    assert erased.email == f"efface-{agent.id}@efface.invalid" and not erased.active
    assert not erased.check_password(factories.PASSWORD)
    # Nothing left that names her, outside the audit rows (never rewritten).
    assert session.scalar(select(User).where(User.email.ilike("%claire%"))) is None
    assert all(d.email == erased.email for d in session.scalars(select(Delivery).where(Delivery.user_id == agent.id)))
    # The audit trail: the same rows with the same hashes, pointing at the same (pseudonymised) id,
    # plus the erasure itself; the chain verifies.
    events_after = session.execute(select(AuditEvent.id, AuditEvent.hash, AuditEvent.actor_id)
                                   .order_by(AuditEvent.id)).all()
    assert events_after[:len(events_before)] == events_before
    erasure = session.scalar(select(AuditEvent).where(AuditEvent.action == "erase_personal_data"))
    assert erasure.subject_id == agent.id and erasure.reason == "Demande d'effacement du 27 novembre"
    assert verify_chain().ok
    # She can no longer sign in, and her old session is over.
    replay = app.test_client()
    replay.set_cookie("session", agent_session)
    assert replay.get("/portail/").status_code == 302
    login = app.test_client().post("/connexion", data={"email": "claire.martin@plaine-dijonnaise.fr",
                                                       "password": factories.PASSWORD})
    assert login.status_code == 401
    # Erasing twice is refused, in French.
    again = admin_client.post(f"/administration/personnes/{agent.id}/effacer", data={"reason": ""})
    assert again.status_code == 400 and "déjà été effacées" in text(again)


def test_an_admin_cannot_erase_their_own_account(client, session):
    admin = factories.staff_logged_in(client, session, "admin")
    response = client.post(f"/administration/personnes/{admin.id}/effacer", data={})
    assert response.status_code == 400 and "votre propre compte" in text(response)


# --- retention ------------------------------------------------------------------------------------


def stored_document(app, dossier):
    from instruction.storage.files import write_bytes

    key = write_bytes(b"%PDF-1.4 facture")
    document = Document(dossier=dossier, original_name="facture.pdf", storage_key=key, size_bytes=16,
                        content_type="application/pdf", sha256="0" * 64, uploaded_at=NOW)
    factories.db.session.add(document)
    return document


def test_files_of_dossiers_closed_longer_than_the_retention_are_purged_once(app, session):
    with app.test_request_context():
        refused = factories.dossier("refused", now=NOW)
        open_one = factories.dossier("received", now=NOW)
        old_file, open_file = stored_document(app, refused), stored_document(app, open_one)
        session.commit()
        assert path_for(old_file.storage_key).is_file()

        closed = max(e.at for e in refused.events if e.to_state == "refused")
        files = len(refused.documents)  # the factory's invoice and ours
        assert files == 2
        # 365 days after the refusal, with a retention of 365 days: not yet (strictly longer).
        assert purge_closed_dossier_files(closed + timedelta(days=365), retention_days=365) == "Aucune pièce à supprimer"
        summary = purge_closed_dossier_files(closed + timedelta(days=365, seconds=1), retention_days=365)
        assert summary == "2 pièce(s) supprimée(s) dans 1 dossier(s) clos depuis plus de 365 jours"
        session.expire_all()
        assert not path_for(old_file.storage_key).exists()
        assert path_for(open_file.storage_key).is_file()  # an open dossier keeps its files
        assert session.get(Document, old_file.id).purged_at == closed + timedelta(days=365, seconds=1)
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "purge_documents"))
        assert event.dossier_id == refused.id and event.to_state == "refused" and "365 jours" in event.reason
        # Idempotent: the next night finds nothing, and writes no second event.
        assert purge_closed_dossier_files(closed + timedelta(days=400), retention_days=365) == "Aucune pièce à supprimer"
        assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "purge_documents")).all()) == 1
        assert verify_chain().ok


def test_a_purged_file_is_a_french_404(app, client, session):
    with app.test_request_context():
        refused = factories.dossier("refused", now=NOW)
        document = stored_document(app, refused)
        session.commit()
        purge_closed_dossier_files(NOW + timedelta(days=400), retention_days=10)
    factories.staff_logged_in(client, session, "instructor")
    response = client.get(f"/documents/{document.id}/telecharger")
    assert response.status_code == 404 and "durée de conservation" in text(response)


def test_the_nightly_job_uses_the_configured_retention(app, session, monkeypatch):
    from instruction.notifications import jobs

    monkeypatch.setitem(app.config, "DOCUMENT_RETENTION_DAYS", 30)
    with app.test_request_context():
        refused = factories.dossier("refused", now=NOW)
        stored_document(app, refused)
        session.commit()
        closed = max(e.at for e in refused.events if e.to_state == "refused")
        assert jobs.run_job("purge_documents", now=closed + timedelta(days=29)) == "Aucune pièce à supprimer"
        assert jobs.run_job("purge_documents", now=closed + timedelta(days=31)) == (
            "2 pièce(s) supprimée(s) dans 1 dossier(s) clos depuis plus de 30 jours")
