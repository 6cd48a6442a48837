"""Writes of the till screen: the store's till channel and the order placed at the till."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from core.actors import Actor
from customers.models import Customer
from integrations.models import Channel, Store
from orders.services import NewLine, Placed, order_place
from staff.till.state import Item, Sale, new_token

CHANNEL_CODE_MAX = Channel._meta.get_field("code").max_length
NUMBER_STORE_CODE_MAX = 40  # T-<store>-<yyyymmdd>-<8 hex> stays within the order number's 64 characters


def till_channel_code(store: Store) -> str:
    code = f"till-{store.code}"
    return code if len(code) <= CHANNEL_CODE_MAX else f"till-store-{store.pk}"


def till_channel_get_or_create(*, store: Store) -> Channel:
    """The store's showroom till channel (kind ``showroom_pos``, no API scopes: it never calls the API), created on
    first use. ``get_or_create`` on the unique code: two first uses at once make one channel."""
    channel, _created = Channel.objects.get_or_create(
        code=till_channel_code(store),
        defaults={"name": f"Showroom till, {store.name}"[:200], "kind": Channel.Kind.SHOWROOM_POS, "scopes": []},
    )
    return channel


def till_order_number(*, store: Store, token: str, day: date) -> str:
    return f"T-{store.code[:NUMBER_STORE_CODE_MAX]}-{day:%Y%m%d}-{token[:8].upper()}"


def till_sale_start(*, sale: Sale, store: Store) -> Sale:
    """A fresh sale at ``store``: no customer, an empty cart, a new token and order number. What was placed last
    (its receipt and token) is kept, so a late repeat of that submit still finds it."""
    token = new_token()
    return Sale(
        store_id=store.pk,
        token=token,
        number=till_order_number(store=store, token=token, day=timezone.localdate()),
        receipt_order_id=sale.receipt_order_id,
        placed_token=sale.placed_token,
    )


def till_operation_key(token: str) -> str:
    return f"staff-till:{token}"


def till_order_place(
    *,
    store: Store,
    customer: Customer | None,
    items: list[Item],
    redeem: Decimal,
    number: str,
    token: str,
    calculation: str,
    user: AbstractBaseUser,
) -> Placed:
    """Place the till's sale through ``order_place`` on the store's till channel: handed over at the till
    (``delivered``: the earned points are active at once), the seller the staff user, the points spent
    ``redeem``. ``calculation`` is the reference of the calculation the seller saw (``price_changed`` when the
    cart changed since). Idempotent: the number and the operation key come from the sale's ``token``, so a
    repeated submit replays the order placed first. Errors are ``order_place``'s (``ApplicationError``s)."""
    channel = till_channel_get_or_create(store=store)
    return order_place(
        channel=channel,
        number=number,
        lines=[
            NewLine(
                line_number=index,
                sku=item.sku,
                quantity=item.quantity,
                price=item.price,
                discount_percent=item.discount_percent,
                name=item.name,
            )
            for index, item in enumerate(items, start=1)
        ],
        operation_key=till_operation_key(token),
        customer=customer,
        store=store,
        seller=user.get_username()[:100],
        delivered=True,
        redeem=redeem,
        calculation=calculation,
        actor=Actor(user=user, channel=channel),
    )
