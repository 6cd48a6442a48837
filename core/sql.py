"""Helpers of hand-written queries on hot paths: model instances made from their rows, and ``= ANY`` lists.

For the few reads where building the ORM statement costs more than running it (the cart calculation, a customer
by id on every channel call); everything else stays on the ORM."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, router, transaction
from django.db.models import Model


def uses_arrays() -> bool:
    """Whether ``= ANY(%s)`` with a list can stand for an ``IN`` list: one statement whatever the list's length, so
    that a prepared statement serves every cart (PostgreSQL)."""
    return connection.vendor == "postgresql"


def default_database():
    """The default database's wrapper itself. ``django.db.connection`` is a proxy that looks the wrapper up (a
    thread-local read) on every attribute access, and preparing a statement's values field by field reads it for every
    value: the hot paths resolve it once."""
    return connections[DEFAULT_DB_ALIAS]


class RowReader:
    """Model instances from a hand-written query's columns, converted as the ORM converts them (JSON, and SQLite's
    booleans, decimals and UUIDs); the fields left out are deferred, as with ``only()``."""

    def __init__(self, model: type[Model], *names: str) -> None:
        fields = [field for field in model._meta.concrete_fields if not names or field.attname in names]
        assert not names or len(fields) == len(names), "unknown field"
        self.model = model
        self.fields = fields
        self.attnames = [field.attname for field in fields]
        self._converters: dict[str, list] = {}
        self._columns: dict[tuple[str, str], str] = {}

    def columns(self, alias: str) -> str:
        """``alias.column, …`` in the order ``instance`` expects (built once per alias and backend: the hot paths
        build their statements on every call)."""
        key = (alias, connection.vendor)
        columns = self._columns.get(key)
        if columns is None:
            columns = ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in self.fields)
            self._columns[key] = columns
        return columns

    def _converters_for(self) -> list:
        converters = self._converters.get(connection.alias)
        if converters is None:
            converters = [
                [
                    (converter, field.cached_col)
                    for converter in (
                        *connection.ops.get_db_converters(field.cached_col),
                        *field.get_db_converters(connection),
                    )
                ]
                for field in self.fields
            ]
            self._converters[connection.alias] = converters
        return converters

    def instance(self, values) -> Model:
        values = list(values)
        for index, converters in enumerate(self._converters_for()):
            for converter, expression in converters:
                values[index] = converter(values[index], expression, connection)
        return self.model.from_db(connection.alias, self.attnames, values)

    def instance_of(self, **values) -> Model:
        return self.instance([values[name] for name in self.attnames])


# Backends whose SQL has INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite since 3.35); others use the ORM.
UPSERT_VENDORS = frozenset({"postgresql", "sqlite"})
INSERT_UNLESS_TAKEN_SQL = "INSERT INTO {table} ({columns}) {values} ON CONFLICT DO NOTHING RETURNING {pk}"
# A one-row FROM item whose evaluation makes the statement's own transaction commit without waiting for the WAL flush.
ASYNC_COMMIT_FROM = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


def commits_asynchronously(using: str) -> bool:
    """Whether a statement on ``using`` may carry ``ASYNC_COMMIT_FROM``: PostgreSQL, and the statement is its own
    transaction. Inside a caller's transaction the setting would last until that transaction's commit and make *its*
    writes (the ledger's, say) non-durable, so there it is never used."""
    database = connections[using]
    return database.vendor == "postgresql" and database.get_autocommit() and not database.in_atomic_block


_INSERT_STATEMENTS: dict[tuple, tuple[list, str]] = {}


def _insert_statement(model: type[Model], using: str, asynchronous: bool) -> tuple[list, str]:
    """The fields and the statement of ``insert_unless_taken`` for ``model``, built once per process (a channel
    call inserts several rows: its idempotency key, the order event, ...)."""
    cache_key = (model, using, asynchronous)
    statement = _INSERT_STATEMENTS.get(cache_key)
    if statement is None:
        quote = connections[using].ops.quote_name
        fields = [field for field in model._meta.concrete_fields if not field.primary_key]
        placeholders = ", ".join(["%s"] * len(fields))
        values = f"SELECT {placeholders} FROM {ASYNC_COMMIT_FROM}" if asynchronous else f"VALUES ({placeholders})"
        sql = INSERT_UNLESS_TAKEN_SQL.format(
            table=quote(model._meta.db_table),
            columns=", ".join(quote(field.column) for field in fields),
            values=values,
            pk=quote(model._meta.pk.column),
        )
        statement = _INSERT_STATEMENTS[cache_key] = (fields, sql)
    return statement


def insert_unless_taken(instance: Model, *, durable: bool = True, plain_values: bool = False) -> bool:
    """Insert the unsaved ``instance`` (setting its pk) unless a unique key of it is taken, by a committed row or by a
    concurrent one (waited for); whether it was inserted.

    One statement and no savepoint: the ORM's ``save`` needs a transaction or savepoint around it so that the unique
    violation can be caught (BEGIN or SAVEPOINT, INSERT, COMMIT or RELEASE), and a failed statement inside a caller's
    transaction would break it. Values are prepared as the ORM's insert prepares them (``pre_save`` fills auto dates).

    ``durable=False``: outside a transaction on PostgreSQL the insert commits without waiting for its WAL flush
    (``synchronous_commit = off`` for that statement alone). Only for rows whose loss in a database crash is harmless
    (see ``integrations/services/idempotency.py``): the next durable commit flushes them anyway.

    ``plain_values=True``: the caller vouches that every field holds a value psycopg adapts as the ORM would store it
    (strings, integers, None, aware datetimes), so on PostgreSQL they are passed as they are, without the ORM's
    field-by-field preparation (a third of an idempotency claim's CPU).
    """
    using = router.db_for_write(type(instance))
    database = connections[using]
    if database.vendor not in UPSERT_VENDORS:
        try:
            with transaction.atomic(using=using):
                instance.save(force_insert=True, using=using)
        except IntegrityError:
            return False
        return True
    asynchronous = not durable and commits_asynchronously(using)
    sql, values = insert_unless_taken_statement(instance, using, asynchronous=asynchronous, plain_values=plain_values)
    with database.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return inserted_as(instance, None if row is None else row[0], using)


def insert_unless_taken_statement(
    instance: Model, using: str, *, asynchronous: bool = False, plain_values: bool = False
) -> tuple[str, list]:
    """``insert_unless_taken``'s statement for ``instance`` and its values (``UPSERT_VENDORS`` only), for a caller
    that runs it inside a statement of its own (a CTE); then ``inserted_as`` with the id it returned, if any."""
    database = connections[using]
    fields, sql = _insert_statement(type(instance), using, asynchronous)
    if plain_values and database.vendor == "postgresql":
        return sql, [getattr(instance, field.attname) for field in fields]
    return sql, [field.get_db_prep_save(field.pre_save(instance, True), database) for field in fields]


def inserted_as(instance: Model, pk, using: str) -> bool:
    """``instance`` saved as the row ``pk`` (None: not inserted, a unique key taken); whether it was inserted."""
    if pk is None:
        return False
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using
    return True


def insert(instance: Model) -> None:
    """``instance.save(force_insert=True)`` by ``insert_unless_taken``'s statement (built once per process: the ORM's
    insert cost more to build than to run, on the orders' hot path). A unique key taken is an ``IntegrityError``, as
    with ``save``."""
    if not insert_unless_taken(instance):
        raise IntegrityError(f"{type(instance).__name__}: a unique key of the row is taken")
