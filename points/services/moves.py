"""Following lots a merge moved (F-ID-7): a lot closed as ``moved`` lives on in its copy on the survivor
(``moved_to``), which a later merge may have moved again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from core.sql import uses_arrays
from points.models import Lot


@dataclass(frozen=True)
class Lineages:
    chains: dict[int, list[int]]  # lot id → the ids its points went through; the last is where they are now
    accounts: set[int]  # the accounts of the lots where they are now

    def now_in(self) -> dict[int, int]:
        """Where each lot's points are now → the lot id asked about."""
        return {chain[-1]: original for original, chain in self.chains.items()}


def lot_lineages(lot_ids: Iterable[int]) -> Lineages:
    """Follow ``lot_ids`` through every merge that moved them: one query, plus one per merge in the longest
    chain."""
    chains = {pk: [pk] for pk in lot_ids}
    accounts: set[int] = set()
    frontier = set(chains)
    while frontier:
        moved = {}
        for pk, moved_to, account_id in _lots_moved_to(frontier):
            if moved_to is None:
                accounts.add(account_id)
            else:
                moved[pk] = moved_to
        for chain in chains.values():
            if chain[-1] in moved:
                chain.append(moved[chain[-1]])
        frontier = set(moved.values())
    return Lineages(chains, accounts)


def _lots_moved_to(lot_ids: set[int]) -> list[tuple[int, int | None, int]]:
    """(id, moved_to, account) of the lots: a plain statement on PostgreSQL, where every delivery and return asks."""
    if not uses_arrays():
        return list(Lot.objects.filter(pk__in=lot_ids).values_list("pk", "moved_to", "account_id"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, moved_to_id, account_id FROM {connection.ops.quote_name(Lot._meta.db_table)} "
            "WHERE id = ANY(%s)",
            [list(lot_ids)],
        )
        return cursor.fetchall()


def lots_followed(lot_ids: Iterable[int]) -> list[int]:
    """The ids where the points of ``lot_ids`` are now."""
    return sorted(lot_lineages(lot_ids).now_in())
