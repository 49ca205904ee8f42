"""Declarative base, naming convention and column types shared by every domain package."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import JSON, DateTime, MetaData, Numeric, Table, TypeDecorator, column, event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert

from instruction import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Money(TypeDecorator):
    """Euros HT with cents: ``Numeric(12, 2)`` read back as ``Decimal`` on every backend."""

    impl = Numeric(12, 2, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("Money never takes a float")
        return Decimal(value).quantize(Decimal("0.01"))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(value).quantize(Decimal("0.01"))


class UTCDateTime(TypeDecorator):
    """An instant stored in UTC; naive values are refused, values read back are aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: instants must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def check_in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint's text: ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements (the declarative base types ``__table__``
    as any ``FromClause``; every model here maps one ``Table``)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_many(connection: Connection, statement: Insert, rows: list[dict]) -> Result:
    """Execute ``statement`` (an INSERT, with its ON CONFLICT and RETURNING if any) for many rows
    at once, each a dict of the same keys, inserted in the order given.

    On PostgreSQL the rows travel as one JSON document, read back by ``json_to_recordset`` in
    their order (``WITH ORDINALITY … ORDER BY``): one parameter and a short statement whatever the
    number of rows, where SQLAlchemy's VALUES list of 500 rows, thousands of parameters, costs
    the client more to build and parse than the server to insert; the serial ids are drawn in the
    order given. JSON columns keep their text (the document is written by ``json.dumps``, as a
    JSON parameter is). Elsewhere, and for a NULL in a JSON column (it would become JSON null),
    the VALUES list: ``returning(…, sort_by_parameter_order=True)`` for RETURNING in order."""
    table = statement.table
    assert isinstance(table, Table)
    names = list(rows[0])
    columns = [table.c[name] for name in names]
    if connection.dialect.name != "postgresql" or any(
            row[c.name] is None for c in columns if isinstance(c.type, JSON) for row in rows):
        return connection.execute(statement, rows)
    dialect = connection.dialect
    # The columns left out that have a default of the model (a value, or a function such as
    # ``clock_now``): given here, row by row, as the VALUES list gives them.
    defaulted = [c for c in table.columns if c.name not in names and c.default is not None
                 and (c.default.is_scalar or c.default.is_callable)]
    columns += defaulted
    decorated = [c for c in columns if isinstance(c.type, TypeDecorator)]
    document = []
    for row in rows:
        row = dict(row)
        for c in defaulted:
            default = c.default
            assert default is not None
            row[c.name] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
        for c in decorated:
            row[c.name] = c.type.process_bind_param(row[c.name], dialect)
        document.append(row)
    quote = dialect.identifier_preparer.quote
    definition = ", ".join(f"{quote(c.name)} {c.type.compile(dialect=dialect)}" for c in columns)
    listed = ", ".join(quote(c.name) for c in columns)
    ordered = text(f"SELECT {listed} FROM ROWS FROM (json_to_recordset(CAST(:many_rows AS JSON)) "
                   f"AS ({definition})) WITH ORDINALITY AS many_rows({listed}, many_position) "
                   "ORDER BY many_position").columns(*(column(c.name) for c in columns))
    return connection.execute(statement.from_select([c.name for c in columns], ordered, include_defaults=False),
                              {"many_rows": json.dumps(document, default=_json_value)})


def _json_value(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value insert_many sends")


def rowcount(result: Result) -> int:
    """The rows an UPDATE or DELETE matched. ``Session.execute`` returns a ``CursorResult`` for
    them, but is typed as returning the ``Result`` it derives from, which has no ``rowcount``."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def clock_now() -> datetime:
    """Column default: the application's clock, looked up at each insert (so a frozen
    ``instruction.clock.now`` applies)."""
    return clock.now()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, WAL so the web app and the worker share the file, and let
    SQLAlchemy (not the driver) open transactions, so that ``_sqlite_begin`` decides how."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    """SQLite: every transaction takes the write lock up front (BEGIN IMMEDIATE).

    Writers then queue behind each other instead of failing with "database is locked" when a read
    snapshot cannot be upgraded, and a read-then-write (such as a grant checking its envelope) is
    serialised. PostgreSQL keeps its own isolation and row locks.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
