"""Region-scale data set: N dossiers over the real territory, deterministic from a seed.

    .venv/bin/python bench/generate.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/instruction_bench \\
        [--dossiers 100000] [--seed 2021] [--fresh]

``--fresh`` DROPS and recreates the database, migrates it and loads the territory and the campaigns.
Then the dossiers of the demo campaign are generated in a realistic mix of aids and states
(a fifth of them drafts, for the nightly jobs), each with its expense lines, its documents (rows
only: no file is written), its audit events and its payments, and loaded with PostgreSQL's COPY.

Every amount comes from the real rule module (``instruction.rules.evaluate``), with the envelopes
and the packs granted kept in memory in submission order: granted dossiers consume their envelope,
paid ones what was paid, so the ``envelope`` rows are exactly what the dossiers hold and no cap is
exceeded (a grant that no longer fits leaves its dossier eligible). Territories are drawn with a
weight of the square root of their population, so a few are much busier than the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/instruction_bench"
PASSWORD = "mot-de-passe-du-banc-d-essai"

# Share of each aid among the dossiers, and the path of states each target state went through.
AID_MIX = {1: 0.35, 2: 0.10, 3: 0.10, 4: 0.35, 5: 0.10}
STATE_MIX = {
    "draft": 0.20, "received": 0.20, "incomplete": 0.06, "eligible": 0.14, "granted": 0.12,
    "paid": 0.08, "ineligible": 0.04, "refused": 0.06, "withdrawn": 0.05, "expired": 0.05,
}
PATHS = {
    "draft": ["create"],
    "expired": ["create", "expire"],
    "received": ["create", "submit"],
    "incomplete": ["create", "submit", "request_documents"],
    "eligible": ["create", "submit", "declare_eligible"],
    "granted": ["create", "submit", "declare_eligible", "grant"],
    "paid": ["create", "submit", "declare_eligible", "grant", "record_final_payment"],
    "ineligible": ["create", "submit", "declare_ineligible"],
    "refused": ["create", "submit", "declare_eligible", "refuse"],
    "withdrawn": ["create", "submit", "withdraw"],
}
TO_STATE = {"create": "draft", "expire": "expired", "submit": "received", "request_documents": "incomplete",
            "declare_eligible": "eligible", "grant": "granted", "record_payment": "granted",
            "record_final_payment": "paid", "declare_ineligible": "ineligible", "refuse": "refused",
            "withdraw": "withdrawn"}
REASONS = {"request_documents": "Merci de joindre le devis signé.", "declare_ineligible": "Bénéficiaire non éligible.",
           "refuse": "Le plafond de l'enveloppe est atteint.", "withdraw": "Projet reporté.",
           "expire": "Date limite de dépôt dépassée."}
CENT = Decimal("0.01")


def recreate_database(url: str) -> None:
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


@dataclasses.dataclass
class Territory:
    """An EPCI with the collectivités that may apply for each aid on its territory."""

    epci: object
    small_communes: list
    communes: list
    ville_centre: object | None
    weight: float


def _territories(session) -> list[Territory]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from instruction.territory.models import Commune, Epci

    communes_by_epci = defaultdict(list)
    for commune in session.scalars(select(Commune).options(selectinload(Commune.epci)).order_by(Commune.insee)):
        if commune.epci_id is not None:
            communes_by_epci[commune.epci_id].append(commune)
    territories = []
    for epci in session.scalars(select(Epci).options(selectinload(Epci.ville_centre)).order_by(Epci.siren)):
        members = communes_by_epci.get(epci.id, [])
        if not members:
            continue
        territories.append(Territory(
            epci=epci, communes=members, ville_centre=epci.ville_centre,
            small_communes=[c for c in members if (c.population or 0) < 1000],
            # EPCI of 50,000 inhabitants or more may not apply for aids 2 to 5: few of them try.
            weight=float(epci.population or 1) ** 0.5 / (5 if (epci.population or 0) >= 50_000 else 1)))
    return territories


def _beneficiary(rng: random.Random, aid: int, territory: Territory):
    if aid == 1:
        pool = territory.small_communes or territory.communes
        return rng.choice(pool)
    if aid in (2, 3):
        return territory.epci
    if aid == 4:
        return territory.epci if rng.random() < 0.4 else rng.choice(territory.communes)
    if territory.ville_centre is not None and rng.random() < 0.3:
        return territory.ville_centre
    return territory.epci


def _lines(rng: random.Random, aid: int, rules_module) -> list:
    """1 to 5 expense lines, plausible for the aid (aid 4 projects mostly above its minimum)."""
    lines = []
    count = rng.choice((1, 2, 3, 3, 3, 4, 5))
    for i in range(count):
        if aid == 1:
            category = rng.choice(("equipement", "logiciel", "licence"))
            amount = Decimal(rng.randrange(20_000, 180_000)) / 100
            months = rng.choice((12, 24, 36, 48)) if category == "licence" else None
            pack = 1 + i % 3
        else:
            category = rng.choice(("cablage", "equipement", "logiciel") if aid == 4 else ("equipement", "logiciel"))
            amount = Decimal(rng.randrange(100_000, 1_200_000 if aid == 4 else 900_000)) / 100
            months, pack = None, None
        label = f"{category.capitalize()} n° {i + 1}"
        lines.append(rules_module.ExpenseLine(category=category, amount_ht=amount, label=label,
                                              pack=pack, months=months))
    return lines


class Copier:
    """Rows buffered per table, written with one COPY each."""

    def __init__(self):
        self.rows: dict[str, list[tuple]] = defaultdict(list)
        self.columns: dict[str, tuple[str, ...]] = {}

    def add(self, table: str, **values) -> None:
        columns = self.columns.setdefault(table, tuple(values))
        self.rows[table].append(tuple(values[c] for c in columns))

    def flush(self, dbapi_connection) -> None:
        with dbapi_connection.cursor() as cursor:
            for table, rows in self.rows.items():
                columns = ", ".join(self.columns[table])
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        self.rows.clear()


def generate(app, n: int, seed: int, now: datetime | None = None) -> dict:
    """Insert ``n`` dossiers (and everything they hold) into the app's PostgreSQL database."""
    from sqlalchemy import select
    from werkzeug.security import generate_password_hash

    from instruction import clock, rules
    from instruction.audit.chain import chain_tip, row_hash
    from instruction.campaigns.models import Campaign
    from instruction.dossiers.evaluation import applicant_for
    from instruction.extensions import db
    from instruction.rules.simulator import decision_as_dict

    rng = random.Random(seed)
    now = now or clock.now()
    started = time.perf_counter()
    with app.app_context():
        session = db.session
        campaign = session.scalar(select(Campaign).where(Campaign.code == "demo"))
        params = dataclasses.replace(rules.load_campaign("demo"), opens_at=campaign.opens_at,
                                     deadline=campaign.deadline_at)
        territories = _territories(session)
        weights = [t.weight for t in territories]
        aids, aid_weights = list(AID_MIX), list(AID_MIX.values())
        states, state_weights = list(STATE_MIX), list(STATE_MIX.values())
        window_end = min(now, campaign.deadline_at) - timedelta(hours=1)
        window = max((window_end - campaign.opens_at).total_seconds(), 3600.0)

        next_id = defaultdict(lambda: 1)
        for table in ("user_account", "dossier", "expense_line", "document", "audit_event", "payment",
                      "envelope", "pack_grant"):
            next_id[table] = (session.scalar(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")) or 0) + 1

        tip = chain_tip(session.connection())

        def new_id(table: str) -> int:
            value = next_id[table]
            next_id[table] = value + 1
            return value

        out = Copier()
        password_hash = generate_password_hash(PASSWORD)
        staff = {}
        for role, count in (("instructor", 10), ("finance", 2), ("admin", 1)):
            staff[role] = []
            for k in range(count):
                uid = new_id("user_account")
                staff[role].append(uid)
                out.add("user_account", id=uid, email=f"bench-{role}-{k}@region.example", full_name=f"{role.capitalize()} {k}",
                        password_hash=password_hash, role=role, collectivite_id=None, active=True,
                        created_at=campaign.opens_at, email_confirmed_at=campaign.opens_at,
                        approved_at=campaign.opens_at)
        agents: dict[int, int] = {}

        # Draw every dossier first, then play them in submission order (envelopes, packs).
        drafts = []
        for _ in range(n):
            aid = rng.choices(aids, aid_weights)[0]
            territory = rng.choices(territories, weights)[0]
            target = rng.choices(states, state_weights)[0]
            created = campaign.opens_at + timedelta(seconds=rng.uniform(0, window * 0.9))
            submitted = created + timedelta(seconds=rng.uniform(60, max(61.0, (window_end - created).total_seconds())))
            drafts.append((submitted, aid, _beneficiary(rng, aid, territory), target, created,
                           _lines(rng, aid, rules)))
        drafts.sort(key=lambda d: d[0])

        consumed: dict[tuple[int, str], Decimal] = defaultdict(lambda: Decimal("0.00"))
        packs: dict[int, set[int]] = defaultdict(set)
        states_count: Counter = Counter()
        doc_count = event_count = payment_count = line_count = 0
        for number, (submitted, aid, who, target, created, lines) in enumerate(drafts, start=1):
            did = new_id("dossier")
            if who.id not in agents:
                uid = agents[who.id] = new_id("user_account")
                out.add("user_account", id=uid, email=f"agent-{who.id}@collectivite.example",
                        full_name=f"Agent {who.name}"[:200], password_hash=password_hash, role="applicant",
                        collectivite_id=who.id, active=True, created_at=campaign.opens_at,
                        email_confirmed_at=campaign.opens_at, approved_at=campaign.opens_at)
            author = agents[who.id]
            applicant = applicant_for(who)
            state = target
            decision = None
            if state not in ("draft", "expired"):
                try:
                    scope = rules.cap_scope(applicant, aid, params)
                except ValueError:
                    scope = ""
                # Submitted before the envelope filled up: pending demand never blocks (DESIGN.md).
                decision = rules.evaluate(applicant, aid, lines, submitted, params)
                if not decision.eligible:
                    state = "ineligible"
                elif state in ("granted", "paid"):
                    # The grant meets the envelope as it is now: it fits (maybe partly) or is refused.
                    held = rules.Consumption(consumed=consumed[(aid, scope)],
                                             packs_granted=frozenset(packs[who.id]) if aid == 1 else frozenset())
                    decision = rules.evaluate(applicant, aid, lines, submitted, params, held)
                    if not decision.eligible:
                        state = "refused"
            path = PATHS[state]
            granted = paid = None
            if state in ("granted", "paid"):
                granted = decision.amount
                key = (aid, decision.cap.scope)
                consumed[key] += granted
                if aid == 1:
                    packs[who.id] |= set(decision.packs_granted)
                    for pack in sorted(decision.packs_granted):
                        out.add("pack_grant", id=new_id("pack_grant"), campaign_id=campaign.id,
                                collectivite_id=who.id, pack=pack, dossier_id=did)
            is_open = state not in ("draft", "expired")
            step = timedelta(days=rng.uniform(1, 20))
            instants = [created] + [min(submitted + step * k, now - timedelta(minutes=1)) for k in range(len(path) - 1)]
            decided = closed = None
            payments = []
            if state == "paid":
                paid = (granted * Decimal(rng.choice(("1", "1", "0.9", "0.75")))).quantize(CENT)
                paid = max(paid, CENT)
                consumed[(aid, decision.cap.scope)] -= granted - paid
                if rng.random() < 0.3 and paid > Decimal("1.00"):
                    first = (paid * Decimal("0.4")).quantize(CENT)
                    payments = [(first, False), (paid - first, True)]
                    path = path[:-1] + ["record_payment", "record_final_payment"]
                    instants.append(instants[-1] + timedelta(days=1))
                else:
                    payments = [(paid, True)]
            elif state == "granted" and rng.random() < 0.3:
                paid = (granted * Decimal("0.4")).quantize(CENT)
                if paid > 0:
                    payments = [(paid, False)]
                    path = path + ["record_payment"]
                    instants.append(instants[-1] + timedelta(days=2))
                else:
                    paid = None
            if state in ("granted", "paid", "ineligible", "refused"):
                decided = instants[path.index("grant") if "grant" in path else -1]
            if state in ("paid", "ineligible", "refused", "withdrawn", "expired"):
                closed = instants[-1]
            states_count[state] += 1
            evaluation = None
            computed = None
            if state in ("eligible", "granted", "paid", "refused") and decision is not None:
                evaluation = json.dumps(decision_as_dict(decision), ensure_ascii=False)
                computed = decision.amount
            out.add("dossier", id=did, reference=f"DEMO-A{aid}-{did:06d}", campaign_id=campaign.id,
                    aid_number=aid, collectivite_id=who.id, state=state, title=f"Projet numérique n° {number}",
                    created_by_id=author,
                    assigned_to_id=rng.choice(staff["instructor"]) if is_open and rng.random() < 0.67 else None,
                    created_at=created, updated_at=instants[-1], submitted_at=submitted if is_open else None,
                    decided_at=decided, closed_at=closed,
                    population=who.population if is_open else None,
                    population_source=who.population_source if is_open else None,
                    population_year=who.population_year if is_open else None,
                    requested_amount=decision.amount if decision is not None else None,
                    computed_amount=computed, granted_amount=granted, paid_amount=paid,
                    cap_scope=(decision.cap.scope or None) if decision is not None else None,
                    evaluation=evaluation)
            for line in lines:
                lid = new_id("expense_line")
                line_count += 1
                out.add("expense_line", id=lid, dossier_id=did, category=line.category, label=line.label,
                        amount_ht=line.amount_ht, pack=line.pack, months=line.months)
                for k in range(1 if (not is_open or rng.random() < 0.75) else 2):
                    if state == "draft" and rng.random() < 0.4:
                        break
                    doc_id = new_id("document")
                    doc_count += 1
                    out.add("document", id=doc_id, dossier_id=did, line_id=lid,
                            original_name=f"facture-{did}-{k + 1}.pdf", storage_key=f"bench{doc_id:027d}",
                            size_bytes=rng.randrange(20_000, 2_000_000), content_type="application/pdf",
                            sha256=f"{rng.getrandbits(256):064x}", uploaded_by_id=author, uploaded_at=created)
            actor_of = {"create": author, "submit": author, "withdraw": author, "expire": None}
            previous = None
            for action, at in zip(path, instants, strict=True):
                event_count += 1
                to_state = TO_STATE[action]
                actor = actor_of.get(action, rng.choice(staff["finance"] if "payment" in action else staff["instructor"]))
                event = {"dossier_id": did, "actor_id": actor, "action": action, "from_state": previous,
                         "to_state": to_state, "at": at, "reason": REASONS.get(action), "prev_hash": tip}
                tip = row_hash(event)  # the rows are chained in id order, as the app appends them
                out.add("audit_event", id=new_id("audit_event"), **event, hash=tip)
                previous = to_state
            for k, (amount, final) in enumerate(payments):
                payment_count += 1
                paid_day = (instants[-1] if final else instants[-1] - timedelta(days=1))
                out.add("payment", id=new_id("payment"), dossier_id=did, amount=amount,
                        paid_on=paid_day.date(), budget_year=paid_day.year, reference=f"M{did:07d}-{k + 1}",
                        is_final=final,
                        recorded_by_id=staff["finance"][0], recorded_at=paid_day)

        for (aid, scope), value in sorted(consumed.items()):
            if not scope:
                continue
            limit = params.rules(aid, params.opens_at).cap_amount
            out.add("envelope", id=new_id("envelope"), campaign_id=campaign.id, aid_number=aid, scope=scope,
                    cap_limit=limit, consumed=value)
        drawn = time.perf_counter() - started

        raw = db.engine.raw_connection()
        try:
            out.flush(raw.driver_connection)
            with raw.driver_connection.cursor() as cursor:
                for table in next_id:
                    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
            raw.driver_connection.commit()
            # VACUUM as autovacuum would in production: without the visibility map the queue's tab
            # counts are a sequential scan instead of an index-only scan (3x slower at 100 k).
            raw.driver_connection.autocommit = True
            with raw.driver_connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
            raw.driver_connection.autocommit = False  # the connection goes back to the pool
        finally:
            raw.close()
    return {"dossiers": n, "states": dict(sorted(states_count.items())), "expense_lines": line_count,
            "documents": doc_count, "audit_events": event_count, "payments": payment_count,
            "agents": len(agents), "envelopes": sum(1 for (_, s) in consumed if s),
            "seconds_drawing": round(drawn, 1), "seconds_total": round(time.perf_counter() - started, 1)}


def prepare(url: str):
    """A fresh database: migrated, with the territory and the campaigns."""
    from flask_migrate import upgrade

    from instruction import create_app
    from instruction.campaigns.services import sync_campaigns
    from instruction.extensions import db
    from instruction.territory.services import import_territory

    recreate_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    with app.app_context():
        upgrade()
        import_territory()
        sync_campaigns()
        db.session.remove()
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--fresh", action="store_true", help="drop, create, migrate and load the reference data")
    options = parser.parse_args(argv)
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-generate-"))
    sys.path.insert(0, str(ROOT))
    if options.fresh:
        app = prepare(options.database_url)
    else:
        from instruction import create_app

        app = create_app({"SQLALCHEMY_DATABASE_URI": options.database_url, "SECRET_KEY": "bench"})
    stats = generate(app, options.dossiers, options.seed)
    out = io.StringIO()
    json.dump(stats, out, indent=2, ensure_ascii=False)
    print(out.getvalue())


if __name__ == "__main__":
    main()
