"""Reads the points API needs beyond ``points.selectors`` (which others are changing right now).

Candidates to move into ``points/selectors.py``.
"""

from django.db.models import Prefetch, QuerySet

from points.exceptions import HoldNotFound
from points.models import Allocation, Entry, Hold


def hold_get(*, hold_id: int) -> Hold:
    """A hold with its account, customer and balance type (one query), or ``HoldNotFound``."""
    hold = Hold.objects.select_related("account__customer", "account__balance_type").filter(pk=hold_id).first()
    if hold is None:
        raise HoldNotFound()
    return hold


def operation_entries(*, operation_key: str) -> QuerySet[Entry]:
    """The journal lines written under one operation key, in order, with the lots they changed."""
    return (
        Entry.objects.filter(operation_key=operation_key)
        .prefetch_related(Prefetch("allocations", queryset=Allocation.objects.select_related("lot").order_by("pk")))
        .order_by("operation_seq")
    )
