"""Large exports built by the worker: above EXPORT_INLINE_MAX_ROWS the export becomes a job of its
author; the worker's code path (``services.build_export``, what the task calls) writes the same
rows as the inline export, in batches read by keyset, recording its progress; the author is
notified, downloads it (nobody else does), and the file is purged after its retention period."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from instruction.backoffice import exports, queries
from instruction.dossiers.models import Dossier
from instruction.exports import services
from instruction.exports.models import ExportJob
from instruction.notifications.models import Delivery, OutboxMessage
from tests import factories
from tests.factories import NOW
from tests.test_backoffice_exports import VIEW, expected_csv, read_csv, world  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("instruction.clock.now", lambda: NOW)


@pytest.fixture
def small_threshold(app, monkeypatch):
    """Views of more than one row are built by the worker."""
    monkeypatch.setitem(app.config, "EXPORT_INLINE_MAX_ROWS", 1)


@pytest.fixture
def author(client, session, world):  # noqa: F811
    factories.log_in(client, world["instructor"])
    return world["instructor"]


def request_job(client, fmt: str = "csv", view: dict | None = None) -> ExportJob:
    response = client.post("/instruction/exports/", data={"format": fmt, **(view or VIEW)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    job_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    job = factories.db.session.get(ExportJob, job_id)
    assert job is not None
    return job


def test_a_large_view_is_offered_to_the_worker(client, session, world, author, small_threshold):  # noqa: F811
    response = client.get("/instruction/export.csv", query_string=VIEW)
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'data-testid="export-count">2<' in page
    assert 'action="/instruction/exports/"' in page and 'name="format" value="csv"' in page
    for name, value in VIEW.items():
        assert f'name="{name}" value="{value}"' in page
    job = request_job(client)
    assert (job.author_id, job.format, job.tab, job.status, job.rows_total, job.rows_done) == (
        author.id, "csv", "tous", "queued", 2, 0)
    assert job.params == VIEW
    show = client.get(f"/instruction/exports/{job.id}").get_data(as_text=True)
    assert 'data-testid="export-status">En attente' in show and "exports.js" in show


def test_small_views_still_download_at_once(client, session, world, author):  # noqa: F811
    assert read_csv(client.get("/instruction/export.csv", query_string=VIEW)) == expected_csv(world)


def test_the_worker_builds_the_same_csv_and_the_author_is_notified(client, session, world, author,  # noqa: F811
                                                                     small_threshold):
    job = request_job(client)
    assert services.build_export(job.id, now=NOW) == f"Export {job.id} : 2 ligne(s) en CSV"
    session.refresh(job)
    assert (job.status, job.rows_done, job.rows_total) == ("ready", 2, 2)
    assert job.expires_at == NOW + timedelta(hours=48)
    assert job.file_name == f"dossiers-tous-2026-11-28-{job.id}.csv"
    page = client.get(f"/instruction/exports/{job.id}").get_data(as_text=True)
    assert f'href="/instruction/exports/{job.id}/telecharger"' in page
    response = client.get(f"/instruction/exports/{job.id}/telecharger")
    assert response.headers["Content-Disposition"] == f"attachment; filename={job.file_name}"
    assert read_csv(response) == expected_csv(world)
    # The in-app notification leads to the export's page.
    [delivery] = session.scalars(select(Delivery).join(OutboxMessage).where(
        OutboxMessage.kind == "export_ready")).all()
    assert delivery.user_id == author.id
    listed = client.get("/notifications/").get_data(as_text=True)
    assert "Export prêt à télécharger" in listed
    assert "Export CSV de 2 dossier(s) (onglet « Tous »), à télécharger jusqu&#39;au 30 novembre 2026 à 11 h 00." \
        in listed
    followed = client.post(f"/notifications/{delivery.id}/ouvrir")
    assert followed.status_code == 302 and followed.headers["Location"] == f"/instruction/exports/{job.id}"
    # A second task for the same job does nothing.
    assert services.build_export(job.id, now=NOW) == f"Export {job.id} : rien à faire"
    assert session.scalar(select(OutboxMessage.id).where(OutboxMessage.kind == "export_ready")) == delivery.message_id


def test_the_worker_builds_the_same_xlsx(client, session, world, author, small_threshold):  # noqa: F811
    job = request_job(client, "xlsx")
    services.build_export(job.id, now=NOW)
    response = client.get(f"/instruction/exports/{job.id}/telecharger")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.get_data())).worksheets[0]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:P3"
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    expected = expected_csv(world)
    assert rows[0] == expected[0]
    assert [r[:8] for r in rows[1:]] == [r[:8] for r in expected[1:]]
    assert [f"{r[10]:.2f}".replace(".", ",") for r in rows[1:]] == [r[10] for r in expected[1:]]


def test_progress_is_recorded_batch_by_batch(client, session, world, author, small_threshold,  # noqa: F811
                                             monkeypatch):
    job = request_job(client, view={"onglet": "tous"})
    monkeypatch.setattr(services, "BATCH", 1)
    seen = []
    original = exports.export_rows_in_batches

    def watched(f, aids, *, batch, after_batch):
        def hook(done):
            after_batch(done)
            seen.append(client.get(f"/instruction/exports/{job.id}/etat").get_json())
            if done == 1:
                page = client.get(f"/instruction/exports/{job.id}").get_data(as_text=True)
                seen.append('max="3" value="1"' in page and "1 ligne(s) écrite(s) sur 3 (33 %)" in page)
        return original(f, aids, batch=batch, after_batch=hook)

    monkeypatch.setattr(services.exports, "export_rows_in_batches", watched)
    services.build_export(job.id, now=NOW)
    states = [s for s in seen if isinstance(s, dict)]
    assert [(s["status"], s["rows_done"], s["rows_total"]) for s in states] == [
        ("running", 1, 3), ("running", 2, 3), ("running", 3, 3), ("running", 3, 3)]
    assert states[1]["text"] == "2 ligne(s) écrite(s) sur 3 (66 %)"
    assert True in seen
    assert client.get(f"/instruction/exports/{job.id}/etat").get_json()["status"] == "ready"


SORT_CASES = [(sort, descending) for sort in queries.SORTS for descending in (False, True)]


@pytest.mark.parametrize(("sort", "descending"), SORT_CASES)
def test_batches_read_by_keyset_give_the_rows_of_the_single_query(session, world, sort, descending):  # noqa: F811
    """Ties (same state, aid, amounts, instructor) and empty keys, in both directions, batch of 2;
    expired drafts have no submission date (nor a reference, for one), though the queue takes
    both as never empty."""
    factories.bulk_dossiers(9, aid=2, assignees=[world["instructor"]])
    prefix = factories.bulk_dossiers(5, aid=1, collectivites=[factories.commune("21001")])
    session.execute(update(Dossier).where(Dossier.reference.in_([f"{prefix}-A1-{i:06d}" for i in (0, 2, 3)]))
                    .values(state="expired", submitted_at=None, computed_amount=None, granted_amount=None,
                            paid_amount=None))
    session.execute(update(Dossier).where(Dossier.reference == f"{prefix}-A1-000003").values(reference=None))
    session.commit()
    options = queries.FilterOptions.load()
    f = queries.QueueFilters(tab="tous", role="instructor", user_id=world["instructor"].id, sort=sort,
                             descending=descending)
    whole = list(exports.export_rows(f, options.aids))
    assert len(whole) == 17
    assert list(exports.export_rows_in_batches(f, options.aids, batch=2)) == whole


def test_an_export_holds_what_its_author_may_see(client, session, world, author, small_threshold):  # noqa: F811
    """"My dossiers" are the author's own, read with the author's id when the file is built."""
    job = request_job(client, view={"onglet": "mes-dossiers"})
    services.build_export(job.id, now=NOW)
    rows = read_csv(client.get(f"/instruction/exports/{job.id}/telecharger"))
    assert [r[0] for r in rows[1:]] == [world["granted"].reference]
    everything = request_job(client, view={"onglet": "tous"})
    services.build_export(everything.id, now=NOW)
    rows = read_csv(client.get(f"/instruction/exports/{everything.id}/telecharger"))
    assert sorted(r[0] for r in rows[1:]) == sorted(world[k].reference for k in ("granted", "paid", "early"))
    assert world["draft"].reference not in {r[0] for r in rows}


def test_an_author_who_lost_access_gets_no_file(client, session, world, author, small_threshold):  # noqa: F811
    job = request_job(client)
    author.active = False  # deactivated by an admin meanwhile
    session.commit()
    assert services.build_export(job.id, now=NOW).endswith("(son auteur n'a plus accès aux dossiers)")
    session.refresh(job)
    assert job.status == "failed" and job.storage_key is None


def test_only_the_author_reaches_the_export(app, client, session, world, author, small_threshold):  # noqa: F811
    job = request_job(client)
    services.build_export(job.id, now=NOW)
    urls = [f"/instruction/exports/{job.id}", f"/instruction/exports/{job.id}/etat",
            f"/instruction/exports/{job.id}/telecharger"]
    for other in (factories.user("instructor"), factories.user("admin"), factories.user("finance"),
                  factories.applicant_of(world["granted"].collectivite)):
        session.commit()
        visitor = app.test_client()
        factories.log_in(visitor, other)
        for url in urls:
            assert visitor.get(url).status_code == 404, (other.role, url)
        assert job.file_name not in visitor.get("/instruction/exports/").get_data(as_text=True)
    anonymous = app.test_client()
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 302 and "/connexion?next=" in response.headers["Location"]
    assert client.get("/instruction/exports/999999").status_code == 404


def test_files_are_purged_after_the_retention_period_once(app, client, session, world, author,  # noqa: F811
                                                          small_threshold):
    job = request_job(client)
    services.build_export(job.id, now=NOW)
    session.refresh(job)
    path = Path(app.config["EXPORT_FOLDER"]) / job.storage_key
    assert path.is_file()
    expiry = NOW + timedelta(hours=48)
    assert services.purge_expired(expiry - timedelta(seconds=1)) == 0
    assert path.is_file()
    assert services.tend(expiry) == "1 export(s) supprimé(s), 0 export(s) remis en file"
    assert not path.exists()
    session.refresh(job)
    assert (job.status, job.purged_at) == ("purged", expiry)
    assert services.tend(expiry + timedelta(hours=1)) == "0 export(s) supprimé(s), 0 export(s) remis en file"
    assert client.get(f"/instruction/exports/{job.id}/telecharger").status_code == 404
    assert 'data-testid="export-gone"' in client.get(f"/instruction/exports/{job.id}").get_data(as_text=True)


def test_an_expired_file_not_yet_purged_is_not_served(app, client, session, world, author, small_threshold,  # noqa: F811
                                                      monkeypatch):
    job = request_job(client)
    services.build_export(job.id, now=NOW)
    monkeypatch.setattr("instruction.clock.now", lambda: NOW + timedelta(hours=48))
    assert client.get(f"/instruction/exports/{job.id}/telecharger").status_code == 404


def test_at_most_three_exports_in_preparation(client, session, world, author, small_threshold):  # noqa: F811
    for _ in range(3):
        request_job(client)
    response = client.post("/instruction/exports/", data={"format": "csv", **VIEW})
    assert response.status_code == 409
    assert "Vous avez déjà 3 exports en préparation" in response.get_data(as_text=True)
    assert session.scalar(select(ExportJob.id).order_by(ExportJob.id.desc()).limit(1)) is not None
    assert len(session.scalars(select(ExportJob)).all()) == 3


def test_an_unknown_format_is_refused_in_french(client, session, world, author):  # noqa: F811
    response = client.post("/instruction/exports/", data={"format": "pdf", **VIEW})
    assert response.status_code == 400
    assert "Format d'export « pdf » inconnu : CSV ou XLSX." in response.get_data(as_text=True).replace("&#39;", "'")


def test_jobs_never_started_or_abandoned_are_queued_again(client, session, world, author, small_threshold,  # noqa: F811
                                                          monkeypatch):
    queued = request_job(client)
    abandoned = request_job(client)
    assert services.claim(abandoned.id, now=NOW)
    sent: list[int] = []
    monkeypatch.setitem(client.application.config, "NOTIFICATION_DISPATCH_ON_COMMIT", True)
    monkeypatch.setattr("instruction.notifications.dispatch.enqueue", lambda ids: None)  # no broker here
    monkeypatch.setitem(client.application.extensions, "export_publisher", sent.append)
    # Too early: the queued one may still be on its way, the running one is alive.
    assert services.tend(NOW + timedelta(minutes=1)) == "0 export(s) supprimé(s), 0 export(s) remis en file"
    assert services.tend(NOW + timedelta(minutes=11)) == "0 export(s) supprimé(s), 2 export(s) remis en file"
    assert sent == [queued.id, abandoned.id]
    session.refresh(abandoned)
    assert abandoned.status == "queued" and abandoned.attempts == 1
    assert services.build_export(abandoned.id, now=NOW + timedelta(minutes=12)).endswith("2 ligne(s) en CSV")


def test_the_csv_of_a_job_is_french_spreadsheet_csv(client, session, world, author, small_threshold):  # noqa: F811
    job = request_job(client)
    services.build_export(job.id, now=NOW)
    body = client.get(f"/instruction/exports/{job.id}/telecharger").get_data()
    assert body.startswith(b"\xef\xbb\xbf") and b"\r\n" in body
    assert list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))[0][0] == "Référence"


def test_the_xlsx_holds_any_text_escaped(client, session, world, author, small_threshold):  # noqa: F811
    """XML's special characters are escaped, characters XML cannot hold are dropped."""
    world["instructor"].full_name = 'Dupont & <Fils> "aîné"\x07'
    session.commit()
    job = request_job(client, "xlsx")
    services.build_export(job.id, now=NOW)
    sheet = load_workbook(io.BytesIO(client.get(f"/instruction/exports/{job.id}/telecharger").get_data())).active
    assert sheet["P3"].value == 'Dupont & <Fils> "aîné"'
    assert sheet.title == "Dossiers - Tous"
