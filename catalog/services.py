"""Writes of the catalogue: ``catalog_upsert``, the one way categories and products change (API sync, CSV import,
admin)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from catalog.exceptions import CatalogInvalid, CatalogTooLarge
from catalog.models import (
    CODE_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PATH_MAX_LENGTH,
    PATH_SEPARATOR,
    SKU_MAX_LENGTH,
    Category,
    Product,
)

MAX_ITEMS = 5000
BATCH_SIZE = 1000
CATEGORY_KEYS = frozenset({"code", "name", "parent"})
PRODUCT_FLAGS = ("new_arrival", "excluded_from_earning", "excluded_from_redemption", "is_active")
PRODUCT_KEYS = frozenset({"sku", "name", "category", "arrival_date", *PRODUCT_FLAGS})
PRODUCT_DEFAULTS = {
    "category": None,
    "new_arrival": False,
    "arrival_date": None,
    "excluded_from_earning": False,
    "excluded_from_redemption": False,
    "is_active": True,
}
PRODUCT_COLUMNS = ("name", "category_id", "arrival_date", *PRODUCT_FLAGS)
# Any constant serialises concurrent syncs; this one spells "catalog" in ASCII.
ADVISORY_LOCK_KEY = 0x636174616C6F67


@dataclass(frozen=True)
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class UpsertResult:
    categories: Counts = field(default_factory=Counts)
    products: Counts = field(default_factory=Counts)

    @property
    def created(self) -> int:
        return self.categories.created + self.products.created

    @property
    def updated(self) -> int:
        return self.categories.updated + self.products.updated

    @property
    def unchanged(self) -> int:
        return self.categories.unchanged + self.products.unchanged


class _Errors:
    """Field errors keyed like the API's validation errors: ``products.3.category``."""

    def __init__(self) -> None:
        self.fields: dict[str, list[dict[str, str]]] = {}

    def add(self, kind: str, index: int, name: str | None, code: str, message: Any) -> None:
        key = f"{kind}.{index}" if name is None else f"{kind}.{index}.{name}"
        self.fields.setdefault(key, []).append({"code": code, "message": str(message)})

    def __bool__(self) -> bool:
        return bool(self.fields)


def catalog_size_check(*, categories: int, products: int) -> None:
    """Refuse a request bigger than ``MAX_ITEMS`` before spending time on validating its items."""
    if categories + products > MAX_ITEMS:
        raise CatalogTooLarge(
            _("At most %(limit)s categories and products together per request.") % {"limit": MAX_ITEMS}
        )


def catalog_upsert(*, categories: Sequence[dict], products: Sequence[dict]) -> UpsertResult:
    """Create or update categories (by ``code``) and products (by ``sku``) in one transaction.

    Each item is the full record: an omitted optional field takes its default (no category, flags false,
    ``is_active`` true). A category's ``parent`` and a product's ``category`` are codes, either already stored or
    sent in the same request. Every item is validated before anything is written: on any error ``CatalogInvalid``
    names each bad item and field (``products.3.category``) and nothing changes. Category paths are recomputed
    for the categories sent and for every descendant of a re-parented one.

    Idempotent: repeating a request changes nothing and counts every item as unchanged; unchanged rows are
    not written (their ``updated_at`` stays). Concurrent syncs are serialised by a transaction-level advisory
    lock on PostgreSQL (SQLite serialises writers anyway). Queries: a handful plus one per ``BATCH_SIZE`` items.
    """
    catalog_size_check(categories=len(categories), products=len(products))
    with transaction.atomic():
        _lock_catalogue()
        errors = _Errors()
        category_items = _clean_all(categories, "categories", _clean_category, "code", errors)
        product_items = _clean_all(products, "products", _clean_product, "sku", errors)
        tree = _CategoryTree.load()
        tree.apply(category_items, errors)
        for index, item in product_items.items():
            if item["category"] is not None and item["category"] not in tree.parent:
                errors.add("products", index, "category", "unknown_category", _unknown_category(item["category"]))
        if errors:
            raise CatalogInvalid(fields=errors.fields)
        category_counts = tree.save(category_items)
        product_counts = _products_save(product_items.values(), tree.pk)
    return UpsertResult(categories=category_counts, products=product_counts)


def _lock_catalogue() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])


def _unknown_category(code: str) -> str:
    return _("Unknown category code “%(code)s”.") % {"code": code}


# --- validation of single items ------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, name: str | None, code: str, message: Any) -> None:
        super().__init__(message)
        self.name, self.code, self.message = name, code, message


def _clean_all(items: Sequence[Any], kind: str, clean, key: str, errors: _Errors) -> dict[int, dict]:
    """The items whose key is valid, by index; a key sent twice is an error on the later item."""
    cleaned: dict[int, dict] = {}
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            value = clean(item)
        except _Invalid as invalid:
            errors.add(kind, index, invalid.name, invalid.code, invalid.message)
            continue
        problems = value.pop("_problems")
        for problem in problems:
            errors.add(kind, index, *problem)
        if value[key] is None:
            continue
        if value[key] in seen:
            errors.add(kind, index, key, "duplicate", _("Sent twice in this request."))
            continue
        seen.add(value[key])
        # Kept even with problems in other fields, so its references are checked too (nothing is written then).
        cleaned[index] = value
    return cleaned


def _mapping(item: Any, allowed: frozenset[str]) -> tuple[dict, list[tuple]]:
    if not isinstance(item, dict):
        raise _Invalid(None, "invalid", _("Expected an object."))
    problems = [(name, "unknown_field", _("Unknown field.")) for name in sorted(set(item) - allowed, key=str)]
    return item, problems


def _text(item: dict, name: str, max_length: int, problems: list[tuple], *, required: bool) -> str | None:
    value = item.get(name)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if required:
            problems.append((name, "required", _("This field is required.")))
        return None
    if not isinstance(value, str):
        problems.append((name, "invalid", _("Expected a string.")))
        return None
    if len(value) > max_length:
        problems.append((name, "max_length", _("At most %(max)s characters.") % {"max": max_length}))
        return None
    if "\x00" in value:
        problems.append((name, "invalid", _("Null characters are not allowed.")))
        return None
    return value


def _code(item: dict, name: str, problems: list[tuple], *, required: bool) -> str | None:
    value = _text(item, name, CODE_MAX_LENGTH, problems, required=required)
    if value is None:
        return None
    try:
        validate_slug(value)
    except ValidationError:
        problems.append((name, "invalid", _("Letters, digits, hyphens and underscores only.")))
        return None
    return value


def _clean_category(item: Any) -> dict:
    item, problems = _mapping(item, CATEGORY_KEYS)
    return {
        "code": _code(item, "code", problems, required=True),
        "name": _text(item, "name", NAME_MAX_LENGTH, problems, required=True),
        "parent": _code(item, "parent", problems, required=False),
        "_problems": problems,
    }


def _clean_product(item: Any) -> dict:
    item, problems = _mapping(item, PRODUCT_KEYS)
    value = {**PRODUCT_DEFAULTS, "_problems": problems}
    value["sku"] = _text(item, "sku", SKU_MAX_LENGTH, problems, required=True)
    value["name"] = _text(item, "name", NAME_MAX_LENGTH, problems, required=True)
    value["category"] = _code(item, "category", problems, required=False)
    for flag in PRODUCT_FLAGS:
        if flag in item and item[flag] is not None:
            if isinstance(item[flag], bool):
                value[flag] = item[flag]
            else:
                problems.append((flag, "invalid", _("Expected true or false.")))
    arrival_date = item.get("arrival_date")
    if isinstance(arrival_date, str) and arrival_date:
        try:
            arrival_date = datetime.date.fromisoformat(arrival_date)
        except ValueError:
            arrival_date = "invalid"
    if arrival_date in (None, ""):
        value["arrival_date"] = None
    elif isinstance(arrival_date, datetime.date) and not isinstance(arrival_date, datetime.datetime):
        value["arrival_date"] = arrival_date
    else:
        problems.append(("arrival_date", "invalid", _("Expected a date as YYYY-MM-DD.")))
    if value["new_arrival"] and value["arrival_date"] is None and "arrival_date" not in {p[0] for p in problems}:
        problems.append(("arrival_date", "required", _("A new arrival needs an arrival date.")))
    return value


# --- categories ------------------------------------------------------------------------------


class _CategoryTree:
    """Every category as it will be after the upsert: parent codes, names and paths, by code."""

    def __init__(self, rows: Iterable[tuple[int, str, str, int | None, str]]) -> None:
        rows = list(rows)
        code_by_pk = {pk: code for pk, code, _name, _parent, _path in rows}
        self.pk: dict[str, int] = {code: pk for pk, code, _name, _parent, _path in rows}
        self.stored = {code: (name, code_by_pk.get(parent), path) for _pk, code, name, parent, path in rows}
        self.parent: dict[str, str | None] = {code: parent for code, (_n, parent, _p) in self.stored.items()}
        self.name: dict[str, str] = {code: name for code, (name, _pa, _p) in self.stored.items()}
        self.path: dict[str, str] = {}

    @classmethod
    def load(cls) -> _CategoryTree:
        # The whole tree: re-parenting moves descendants that are not in the request. Trees are small.
        return cls(Category.objects.values_list("pk", "code", "name", "parent_id", "path"))

    def apply(self, items: dict[int, dict], errors: _Errors) -> None:
        for item in items.values():
            self.parent[item["code"]] = item["parent"]
            self.name[item["code"]] = item["name"]
        for index, item in items.items():
            if item["parent"] is not None and item["parent"] not in self.parent:
                errors.add("categories", index, "parent", "unknown_category", _unknown_category(item["parent"]))
                self.parent[item["code"]] = None  # go on checking the rest as if it were a root
        index_by_code = {item["code"]: index for index, item in items.items()}
        for code in self.parent:
            path = self._path_of(code)
            if code in index_by_code and path is None:
                errors.add(
                    "categories", index_by_code[code], "parent", "cycle", _("A category cannot be its own ancestor.")
                )
            elif path is not None and len(path) > PATH_MAX_LENGTH:
                moved = self._nearest_sent_ancestor(code, index_by_code)
                too_deep = _("The category tree is too deep.")
                errors.add("categories", index_by_code[moved], "parent", "too_deep", too_deep)

    def _path_of(self, code: str) -> str | None:
        """Slash-joined codes from the root; ``None`` when the parent chain loops."""
        chain: list[str] = []
        seen: set[str] = set()
        node: str | None = code
        while node is not None and node not in self.path:
            if node in seen:
                return None
            seen.add(node)
            chain.append(node)
            node = self.parent[node]
        base = self.path[node] if node is not None else ""
        for node in reversed(chain):
            base = f"{base}{PATH_SEPARATOR}{node}" if base else node
            self.path[node] = base
        return self.path[code]

    def _nearest_sent_ancestor(self, code: str, index_by_code: dict[str, int]) -> str:
        # A stored tree is never too deep: some category sent in this request moved this one down.
        node = code
        while node not in index_by_code:
            node = self.parent[node]
        return node

    def _final(self, code: str) -> tuple[str, str | None, str]:
        return self.name[code], self.parent[code], self.path[code]

    def save(self, items: dict[int, dict]) -> Counts:
        created = [item["code"] for item in items.values() if item["code"] not in self.stored]
        Category.objects.bulk_create(
            [Category(code=code, name=self.name[code], path=self.path[code]) for code in created],
            batch_size=BATCH_SIZE,
        )
        if created:
            self.pk.update(Category.objects.filter(code__in=created).values_list("code", "pk"))
        now = timezone.now()
        changed = [
            Category(
                pk=self.pk[code],
                name=self.name[code],
                parent_id=self.pk[self.parent[code]] if self.parent[code] else None,
                path=self.path[code],
                updated_at=now,
            )
            for code in self.parent
            if self._final(code) != self.stored.get(code, ("", None, ""))
            and (code in self.stored or self.parent[code] is not None)
        ]
        Category.objects.bulk_update(changed, ["name", "parent", "path", "updated_at"], batch_size=BATCH_SIZE)
        sent = [item["code"] for item in items.values()]
        updated = sum(1 for code in sent if code in self.stored and self.stored[code] != self._final(code))
        return Counts(created=len(created), updated=updated, unchanged=len(items) - len(created) - updated)


# --- products --------------------------------------------------------------------------------


def _products_save(items: Iterable[dict], category_pk: dict[str, int]) -> Counts:
    items = list(items)
    stored: dict[str, tuple] = {}
    for start in range(0, len(items), BATCH_SIZE):
        skus = [item["sku"] for item in items[start : start + BATCH_SIZE]]
        for sku, *values in Product.objects.filter(sku__in=skus).values_list("sku", *PRODUCT_COLUMNS):
            stored[sku] = tuple(values)
    writes: list[Product] = []
    created = updated = 0
    for item in items:
        columns = {
            "name": item["name"],
            "category_id": category_pk[item["category"]] if item["category"] else None,
            **{name: item[name] for name in ("arrival_date", *PRODUCT_FLAGS)},
        }
        before = stored.get(item["sku"])
        if before == tuple(columns[name] for name in PRODUCT_COLUMNS):
            continue
        if before is None:
            created += 1
        else:
            updated += 1
        writes.append(Product(sku=item["sku"], **columns))
    # One INSERT … ON CONFLICT (sku) DO UPDATE per batch; a product created meanwhile by another writer is
    # updated, not duplicated. auto_now fills updated_at on both paths; created_at is kept on update.
    Product.objects.bulk_create(
        writes,
        batch_size=BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["sku"],
        update_fields=[*PRODUCT_COLUMNS, "updated_at"],
    )
    return Counts(created=created, updated=updated, unchanged=len(items) - created - updated)
