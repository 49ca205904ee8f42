"""The hash chain of ``audit_event``: each row carries the hash of the one before it.

A row's ``hash`` is the SHA-256 of the canonical serialisation of every column of the row except
``id`` and ``hash`` itself, ``prev_hash`` included: changing a field breaks that row's hash,
removing or inserting a row breaks the next row's link. The chain follows ``id`` order.

The canonical form is JSON with sorted keys and no spaces, values as plain JSON (instants in UTC
ISO 8601 with microseconds, dates ISO, Decimal as its string, JSON columns nested), and **columns
whose value is NULL left out**. So a column added later to ``audit_event`` is covered by the
chain from then on without any change here, provided it is NULL on past rows (add it nullable, or
backfill nothing into past rows): past rows still verify. Never rename or retype a column of
``audit_event``: that changes past rows' serialisation (it would need a new chain version).

Rows are appended under a lock so that two transactions never chain onto the same tip: on
PostgreSQL a transaction-level advisory lock, taken before reading the tip and held until commit
(the chain order is the commit order); on SQLite every transaction is already serialised
(``BEGIN IMMEDIATE``, ``instruction.db``). ``AuditEvent`` is mapped with ``batch=False`` so that
each row is inserted before the next one reads the tip.

The journal's model is the dossiers' (``dossiers.models.AuditEvent``), which hands itself to
``seal_journal`` when it is defined: the audit package imports no dossier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from instruction import clock
from instruction.db import Base, insert_many, table_of

if TYPE_CHECKING:
    from instruction.dossiers.models import AuditEvent

GENESIS = "0" * 64  # the ``prev_hash`` of the first row
LOCK_KEY = 0x61756469  # "audi": PostgreSQL advisory lock serialising the appends
NOT_HASHED = ("id", "hash")


class AppendOnly(Exception):
    """An audit event is never changed nor deleted once written."""


_journal: list[type[Base]] = []  # the chained model, once sealed


def seal_journal(model: type[Base]) -> None:
    """Make ``model`` the chained journal: every new row is sealed onto the chain, none is ever
    changed or deleted. Called once, by the model's own module."""
    if _journal:
        if _journal[0] is not model:
            raise RuntimeError(f"the audit journal is {_journal[0].__name__} already")
        return
    _journal.append(model)
    event.listen(model, "before_insert", _seal)
    event.listen(model, "before_update", _refuse_update)
    event.listen(model, "before_delete", _refuse_delete)


def journal_table() -> sa.Table:
    """The chained table (``audit_event``)."""
    if not _journal:
        raise RuntimeError("no audit journal sealed (instruction.dossiers.models not imported)")
    return table_of(_journal[0])


def _plain(value):
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def canonical(fields: Mapping[Any, object]) -> bytes:
    """The bytes a row's hash is computed over (``id``, ``hash`` and NULL values left out)."""
    kept = {name: _plain(value) for name, value in fields.items()
            if name not in NOT_HASHED and value is not None}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=_plain).encode("utf-8")


def row_hash(fields: Mapping[Any, object]) -> str:  # a dict or a RowMapping, keyed by column name
    return hashlib.sha256(canonical(fields)).hexdigest()


def lock_chain(connection: Connection) -> None:
    """Wait for the right to append (PostgreSQL; SQLite transactions are serialised already)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def chain_tip(connection: Connection) -> str:
    table = journal_table()
    tip = connection.execute(sa.select(table.c.hash).order_by(table.c.id.desc()).limit(1)).scalar()
    return tip or GENESIS


def _seal(mapper, connection: Connection, target: AuditEvent) -> None:
    """Link the new row to the tip of the chain, just before its INSERT."""
    if target.at is None:
        target.at = clock.now()
    lock_chain(connection)
    target.prev_hash = chain_tip(connection)
    target.hash = row_hash({column.name: getattr(target, mapper.get_property_by_column(column).key)
                            for column in journal_table().columns})


def _refuse_update(mapper, connection, target) -> None:
    raise AppendOnly(f"audit event {target.id} is append-only: it cannot be changed")


def _refuse_delete(mapper, connection, target) -> None:
    raise AppendOnly(f"audit event {target.id} is append-only: it cannot be deleted")


def append_many(connection: Connection, rows: list[dict]) -> list[int]:
    """Append audit events in one INSERT, for the jobs that act on many dossiers at once: chained
    exactly as ``_seal`` chains the ORM's appends (same lock, same tip, same hash), each row linked
    to the one before it in the order given. Returns the new ids in that order."""
    if not rows:
        return []
    table = journal_table()
    lock_chain(connection)
    tip = chain_tip(connection)
    sealed = []
    for row in rows:
        full = {column.name: row.get(column.name) for column in table.columns if column.name != "id"}
        if full["at"] is None:
            full["at"] = clock.now()
        full["prev_hash"] = tip
        full["hash"] = tip = row_hash(full)
        sealed.append(full)
    # Columns NULL on every row are left out of the INSERT (a JSON column given None would store
    # JSON null): the database writes NULL, which the hash leaves out too.
    used = [name for name in sealed[0] if any(row[name] is not None for row in sealed)]
    result = insert_many(connection, sa.insert(table).returning(table.c.id, table.c.hash, sort_by_parameter_order=True),
                         [{name: row[name] for name in used} for row in sealed])
    id_of = {row.hash: row.id for row in result}
    ids = [id_of[row["hash"]] for row in sealed]
    if ids != sorted(ids):  # the chain follows id order: never written out of it
        raise RuntimeError("audit events inserted out of their chain's order")
    return ids
