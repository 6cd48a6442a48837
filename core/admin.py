"""Admin building blocks for big tables, shared by the apps' admins (SPEC F-STAFF-4).

Nothing is registered here: these are a paginator, a read-only base class and a list filter that the ledger
and the customer admins use for tables of millions of rows.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _


class EstimatedCountPaginator(Paginator):
    """On PostgreSQL an unfiltered list of a big table shows the planner's row estimate instead of running
    COUNT(*) over tens of millions of rows; filtered lists and small tables are counted exactly."""

    exact_below = 10_000

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor != "postgresql" or query is None or query.where:
            return super().count
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [query.model._meta.db_table]
            )
            row = cursor.fetchone()
        estimate = row[0] if row else -1  # -1: the table was never analysed
        return estimate if estimate >= self.exact_below else super().count


class PlannerEstimatePaginator(EstimatedCountPaginator):
    """Besides the unfiltered list's table estimate (``EstimatedCountPaginator``): a filtered list that PostgreSQL's
    planner expects to hold many rows (lots in state "active", journal lines of kind "accrue") shows the planner's
    estimate instead of counting millions of matching rows; a filtered list expected to be short is counted
    exactly, as is everything off PostgreSQL."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and query.where:
            estimate = planner_rows(self.object_list)
            if estimate >= self.exact_below:
                return estimate
        return super().count


def planner_rows(queryset: QuerySet) -> int:
    """How many rows PostgreSQL's planner expects ``queryset`` to return (``EXPLAIN``: planned, not run)."""
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing (``.none()``, an empty ``IN``): no query needed
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete for anyone: the ledger changes through services only."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator
    sortable_by = ["id"]
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on whether ``field`` is set."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})
        return queryset


class RulesNamingProtectMixin:
    """For admins of things the programme rules name (stores, categories): the delete page lists those rules as
    protected objects instead of failing on the refusal in ``programmes.receivers``."""

    def get_deleted_objects(self, objs, request):
        from programmes.selectors import rules_naming  # programmes depends on these apps, not the reverse

        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        named = [f"{rule._meta.verbose_name}: {rule}" for obj in objs for rule in rules_naming(obj)]
        return deleted, counts, perms_needed, [*protected, *named]
