"""Money under concurrent clicks, over HTTP, against several server processes.

The application runs under gunicorn with 3 worker processes (``wsgi:app``, as in production, CSRF
on) on a free local port, on a committed PostgreSQL database and on a SQLite file. Clients logged in
as finance and admin fire their POSTs together (a barrier releases them); afterwards every dossier's
paid total is the sum of the payments that count and never exceeds its grant, and every envelope's
consumed is what its dossiers hold (granted: the grant; paid: what was paid), computed here in SQL.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from instruction.extensions import db
from tests import factories
from tests.conftest import TOTP_ENCRYPTION_KEY, prepared_app, sibling_database_url

ROOT = Path(__file__).resolve().parent.parent
GRANT = Decimal("1000.00")
PAID_ON = "2026-11-28"  # the day of the grant in the factories (NOW)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One person's session over real HTTP: cookie and CSRF token kept, redirects not followed."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.csrf = ""

    def request(self, method: str, path: str, data: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if data is not None:
            body = urlencode({**data, "csrf_token": self.csrf})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        page = response.read().decode()
        conn.close()
        if match := re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page):
            self.csrf = match.group(1)
        return response.status, page

    def log_in(self, email: str) -> Browser:
        self.request("GET", "/connexion")
        status, page = self.request("POST", "/connexion", {"email": email, "password": factories.PASSWORD})
        assert status == 302, page[:2000]
        if "/connexion/code" in page:  # an admin: the second factor (a step's code counts once)
            db.session.execute(text("UPDATE user_account SET totp_last_step = NULL WHERE email = :e"),
                               {"e": email})
            db.session.commit()
            self.request("GET", "/connexion/code")
            status, page = self.request("POST", "/connexion/code", {"code": factories.totp_code()})
            assert status == 302, page[:2000]
        self.request("GET", "/")  # a page with a form: a CSRF token for this session
        return self


@pytest.fixture(params=["postgresql", "sqlite"], scope="module")
def server(request, tmp_path_factory):
    """(the app for setting up and checking, the port of gunicorn serving the same database)."""
    tmp = tmp_path_factory.mktemp(f"race-{request.param}")
    url = f"sqlite:///{tmp / 'race.db'}" if request.param == "sqlite" else sibling_database_url("httprace")
    app = prepared_app(url, tmp)
    with app.app_context():
        finance = factories.user("finance")
        admin = factories.user("admin")
        db.session.commit()
        users = {"finance": finance.email, "admin": admin.email}
        db.session.remove()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "race-secret", "INSTANCE_PATH": str(tmp),
           "TOTP_ENCRYPTION_KEYS": TOTP_ENCRYPTION_KEY,
           "MAIL_FOLDER": str(tmp / "mail"), "UPLOAD_FOLDER": str(tmp / "uploads")}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--workers", "3", "--bind", f"127.0.0.1:{port}",
         "--timeout", "120", "wsgi:app"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=open(tmp / "gunicorn.log", "w"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                Browser(port).request("GET", "/connexion")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp / "gunicorn.log").read_text()
                time.sleep(0.3)
        with app.app_context():
            yield app, port, users
    finally:
        process.terminate()
        process.wait(timeout=30)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def granted_dossiers(n: int) -> list[int]:
    ids = [factories.dossier("granted", grant_amount=GRANT).id for _ in range(n)]
    db.session.commit()
    return ids


def together(requests: list) -> list[tuple[int, str]]:
    """Run each ``(browser, path, data)`` in its own thread, released at the same instant."""
    barrier = threading.Barrier(len(requests))

    def run(item):
        browser, path, data = item
        barrier.wait(timeout=60)
        return browser.request("POST", path, data)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(run, requests))


def payment(amount: str, reference: str, **extra) -> dict:
    return {"amount": amount, "paid_on": PAID_ON, "reference": reference,
            "token": secrets.token_urlsafe(24), **extra}


def action(dossier_id: int, name: str) -> str:
    return f"/instruction/dossiers/{dossier_id}/actions/{name}"


def assert_money_holds():
    """For every dossier: paid = sum of the payments that count <= grant; every envelope's consumed
    = what its dossiers hold."""
    dossiers = db.session.execute(text("""
        SELECT d.id, d.state, d.granted_amount, d.paid_amount,
               (SELECT COALESCE(SUM(p.amount), 0) FROM payment p
                 WHERE p.dossier_id = d.id AND p.cancelled_at IS NULL) AS payments
        FROM dossier d WHERE d.state <> 'draft'""")).all()
    for d in dossiers:
        paid = Decimal(str(d.paid_amount or 0)).quantize(Decimal("0.01"))
        assert paid == Decimal(str(d.payments)).quantize(Decimal("0.01")), d
        if paid:
            assert d.state in ("granted", "paid") and paid <= Decimal(str(d.granted_amount)), d
    envelopes = db.session.execute(text("""
        SELECT e.id, e.consumed,
               (SELECT COALESCE(SUM(CASE WHEN d.state = 'granted' THEN d.granted_amount
                                         WHEN d.state = 'paid' THEN d.paid_amount END), 0)
                  FROM dossier d
                 WHERE d.campaign_id = e.campaign_id AND d.aid_number = e.aid_number
                   AND d.cap_scope = e.scope) AS held
        FROM envelope e""")).all()
    db.session.rollback()
    assert envelopes
    for e in envelopes:
        assert Decimal(str(e.consumed)).quantize(Decimal("0.01")) == \
            Decimal(str(e.held)).quantize(Decimal("0.01")), e


def state_of(dossier_id: int) -> tuple[str, Decimal | None, int]:
    db.session.expire_all()
    row = db.session.execute(text(
        "SELECT state, paid_amount, (SELECT COUNT(*) FROM payment WHERE dossier_id = :id "
        "AND cancelled_at IS NULL) AS n FROM dossier WHERE id = :id"), {"id": dossier_id}).one()
    db.session.rollback()  # SQLite: a read holds the write lock (BEGIN IMMEDIATE) until it ends
    paid = None if row.paid_amount is None else Decimal(str(row.paid_amount)).quantize(Decimal("0.01"))
    return row.state, paid, row.n


def test_parallel_partial_payments_record_one(server):
    app, port, users = server
    clerks = [Browser(port).log_in(users["finance"]) for _ in range(3)]
    for k, dossier_id in enumerate(granted_dossiers(4)):
        outcomes = together([(clerk, action(dossier_id, "record_payment"), payment("600", f"P-{k}-{i}"))
                             for i, clerk in enumerate(clerks)])
        codes = sorted(code for code, _ in outcomes)
        assert codes == [302, 400, 400], [re.findall(r"alert[^>]*>([^<]+)", p) for _, p in outcomes]  # 600 + 600 > 1,000: the others are refused
        assert all("Le versement dépasse le montant attribué" in page for code, page in outcomes if code == 400)
        assert state_of(dossier_id) == ("granted", Decimal("600.00"), 1)
    assert_money_holds()


def test_double_click_records_one_payment(server):
    app, port, users = server
    clerks = [Browser(port).log_in(users["finance"]) for _ in range(3)]
    for dossier_id in granted_dossiers(3):
        same = payment("250", f"DC-{dossier_id}")
        outcomes = together([(clerk, action(dossier_id, "record_payment"), same) for clerk in clerks])
        assert [code for code, _ in outcomes] == [302, 302, 302]
        assert state_of(dossier_id) == ("granted", Decimal("250.00"), 1)
    assert_money_holds()


def test_final_payment_against_partial_payment(server):
    app, port, users = server
    first, second = Browser(port).log_in(users["finance"]), Browser(port).log_in(users["finance"])
    for dossier_id in granted_dossiers(4):
        # A final payment of 400 € confirmed as releasing 600 €, against a partial one of 700 €.
        outcomes = together([
            (first, action(dossier_id, "record_final_payment"), payment("400", f"F-{dossier_id}",
                                                                        confirmed_release="600,00")),
            (second, action(dossier_id, "record_payment"), payment("700", f"P-{dossier_id}")),
        ])
        final, partial = (code for code, _ in outcomes)
        state, paid, n = state_of(dossier_id)
        if final == 302 and partial != 302:  # the final came first: the dossier is closed
            assert (state, paid, n, partial) == ("paid", Decimal("400.00"), 1, 409)
        else:  # the partial came first: 700 + 400 > 1,000
            assert (final, partial) == (400, 302), outcomes
            assert (state, paid, n) == ("granted", Decimal("700.00"), 1)
    assert_money_holds()


def test_cancelling_a_grant_against_a_payment(server):
    app, port, users = server
    clerk, admin = Browser(port).log_in(users["finance"]), Browser(port).log_in(users["admin"])
    for dossier_id in granted_dossiers(4):
        outcomes = together([
            (admin, action(dossier_id, "cancel_grant"), {"reason": "Erreur de dossier",
                                                          "token": secrets.token_urlsafe(24)}),
            (clerk, action(dossier_id, "record_payment"), payment("600", f"C-{dossier_id}")),
        ])
        cancelled, paid_code = (code for code, _ in outcomes)
        assert sorted((cancelled, paid_code)) == [302, 409], outcomes  # one wins, the other is refused
        state, paid, n = state_of(dossier_id)
        if cancelled == 302:
            assert (state, paid, n) == ("eligible", None, 0)
        else:
            assert (state, paid, n) == ("granted", Decimal("600.00"), 1)
    assert_money_holds()


def test_cancelling_a_payment_against_a_payment(server):
    app, port, users = server
    first, second = Browser(port).log_in(users["finance"]), Browser(port).log_in(users["admin"])
    for dossier_id in granted_dossiers(3):
        code, _ = first.request("POST", action(dossier_id, "record_payment"), payment("600", f"X-{dossier_id}"))
        assert code == 302
        payment_id = db.session.execute(text("SELECT id FROM payment WHERE dossier_id = :id"),
                                        {"id": dossier_id}).scalar_one()
        db.session.rollback()
        outcomes = together([
            (second, f"/instruction/dossiers/{dossier_id}/versements/{payment_id}/annulation",
             {"reason": "Saisi sur le mauvais dossier", "token": secrets.token_urlsafe(24)}),
            (first, action(dossier_id, "record_payment"), payment("500", f"Y-{dossier_id}")),
        ])
        cancel_code, pay_code = (code for code, _ in outcomes)
        assert cancel_code == 302, outcomes[0][1][:3000]
        state, paid, n = state_of(dossier_id)
        if pay_code == 302:  # the cancellation came first (600 + 500 would exceed the grant)
            assert (state, paid, n) == ("granted", Decimal("500.00"), 1)
        else:
            assert pay_code == 400 and (state, paid, n) == ("granted", None, 0)
    assert_money_holds()
