"""Helpers of hand-written queries on hot paths: model instances made from their rows, and ``= ANY`` lists.

For the few reads where building the ORM statement costs more than running it (the cart calculation, a customer
by id on every channel call); everything else stays on the ORM."""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


def uses_arrays() -> bool:
    """Whether ``= ANY(%s)`` with a list can stand for an ``IN`` list: one statement whatever the list's length, so
    that a prepared statement serves every cart (PostgreSQL)."""
    return connection.vendor == "postgresql"


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

    def columns(self, alias: str) -> str:
        """``alias.column, …`` in the order ``instance`` expects."""
        return ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in self.fields)

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
