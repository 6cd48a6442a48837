"""Demo data for ``make run``: channels, showrooms and the customers of a furniture chain. Re-running changes nothing.

Customers are made the way real traffic makes them — through the services only: a receipt creates a
non-member (``customer_create``) whose points are restricted to members, joining (``customer_join``) lifts
that and grants the welcome bonus, a validated email (``email_validation_confirm``) the email bonus, staff
block, merge and anonymise with a reason. So the ledger, the consent history and the change history of the
demo are what they would be in production, and ``points_reconcile`` passes.

A customer is set up only if its phone is unknown (the anonymised one, which has no phone left: only if its
anonymisation is not recorded yet), so a re-run — or a database where someone played with the demo
customers — is left exactly as it is. Ledger operations carry stable keys (``demo:<phone>:purchase``) too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from customers.models import ConsentChannel, ConsentEvent, Customer, CustomerChange
from customers.services import (
    consent_set,
    customer_anonymise,
    customer_balance_type,
    customer_block,
    customer_create,
    customer_external_id_set,
    customer_join,
    customer_merge,
    customer_update,
    email_validation_confirm,
)
from customers.services.email import email_validation_token
from integrations.models import ApiKey, Channel, Store
from integrations.scopes import ALL_SCOPES, Scope
from integrations.services.channels import api_key_hash, api_key_issue, channel_create
from orders.demo import demo_orders_load
from points.models import LotKind
from points.services import points_accrue, points_redeem
from programmes.demo import demo_rules_load

DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_PASSWORD = "admin"  # local demo only; the command refuses to run with DEBUG off
# A fixed key so the README's curl examples work on every fresh demo database.
DEMO_SITE_API_KEY = "lcrm_demo_site_key_local_only"

SITE, SHOWROOM, ERP = "demo-site", "demo-showroom", "demo-erp"
DEMO_CHANNELS = [
    (SITE, "Demo web site", Channel.Kind.SITE, sorted(ALL_SCOPES)),
    (
        SHOWROOM,
        "Demo showroom till",
        Channel.Kind.SHOWROOM_POS,
        [
            Scope.CUSTOMERS_READ,
            Scope.CUSTOMERS_WRITE,
            Scope.POINTS_READ,
            Scope.POINTS_WRITE,
            Scope.CARTS_CALCULATE,
            Scope.ORDERS_WRITE,
        ],
    ),
    (
        ERP,
        "Demo ERP",
        Channel.Kind.ERP,
        [Scope.CUSTOMERS_READ, Scope.ORDERS_READ, Scope.ORDERS_WRITE, Scope.CATALOG_READ, Scope.CATALOG_WRITE],
    ),
]
KHIMKI, NEVSKY, EKB = "msk-khimki", "spb-nevsky", "ekb-center"
DEMO_STORES = [
    (KHIMKI, "Showroom Khimki", "Moscow"),
    (NEVSKY, "Showroom Nevsky", "Saint Petersburg"),
    (EKB, "Showroom Yekaterinburg Centre", "Yekaterinburg"),
]

BLOCK_REASON = "Suspected card sharing: 14 purchases in 3 showrooms on one day (security ticket SEC-112)"
MERGE_REASON = "Same person: old phone number, confirmed by the customer on a call (call centre ticket CC-2291)"
# Also how a re-run recognises that the demo's anonymised customer exists: it has no phone left to look up.
ANONYMISE_REASON = "Erasure request from the customer under 152-FZ (DPO ticket DPO-45)"

SMS, EMAIL, PUSH = ConsentChannel.SMS, ConsentChannel.EMAIL, ConsentChannel.PUSH
FEMALE, MALE = Customer.Gender.FEMALE, Customer.Gender.MALE
B2B = Customer.Kind.B2B


@dataclass(frozen=True)
class DemoCustomer:
    phone: str
    name: str = ""
    member: bool = True
    channel: str = SITE  # where the customer was first seen (the registration channel)
    store: str = ""  # showroom of registration
    language: str = "ru"
    gender: str = ""
    birth_date: date | None = None
    email: str = ""
    email_validated: bool = False  # added later through the personal account and confirmed from the link
    card: str = ""
    site_user_id: str = ""  # external id in the demo site's system
    kind: str = Customer.Kind.RETAIL
    company: str = ""
    b2b_role: str = ""
    consents: tuple[tuple[str, bool], ...] = ()  # in order: a grant then a revocation leaves history
    purchase: int = 0  # points for a purchase on a receipt
    bought_before_joining: bool = False  # the purchase points were accrued to a non-member, then lifted
    pending: int = 0  # points of an order not delivered yet
    redeem: int = 0  # points spent at a checkout
    block: bool = False
    merge_into: str = ""  # phone of the survivor this duplicate is merged into
    anonymise: bool = False


def _receipt(phone: str) -> str:
    return f"R-{phone[-5:]}"


DEMO_CUSTOMERS = [
    # The four customers of the first demo (README examples use +79161234567).
    DemoCustomer(
        "+79161234567",
        "Петрова Анна Сергеевна",
        gender=FEMALE,
        birth_date=date(1986, 4, 12),
        email="anna.petrova@example.ru",
        email_validated=True,
        card="2600000000015",
        site_user_id="site-10001",
        consents=((SMS, True), (EMAIL, True)),
        purchase=3200,
        redeem=1000,
    ),
    DemoCustomer(
        "+79031112233",
        "Сидоров Иван Петрович",
        channel=SHOWROOM,
        store=KHIMKI,
        gender=MALE,
        card="2600000000022",
        consents=((SMS, True),),
        purchase=1850,
    ),
    DemoCustomer("+79265554433", "Смирнова Ольга", email="olga.smirnova@example.ru", site_user_id="site-10003"),
    DemoCustomer("+79998887766", member=False, channel=ERP, purchase=740),
    # Retail members, Russian names.
    DemoCustomer(
        "+79167770011",
        "Иванова Анна Сергеевна",
        channel=SHOWROOM,
        store=KHIMKI,
        gender=FEMALE,
        birth_date=date(1991, 9, 3),
        consents=((SMS, True),),
        purchase=2400,
        pending=350,
    ),
    DemoCustomer("+79057003344", "Петров Дмитрий", site_user_id="site-10017", consents=((PUSH, True),), purchase=560),
    DemoCustomer(
        "+79219876543",
        "Кузнецова Мария Владимировна",
        channel=SHOWROOM,
        store=NEVSKY,
        gender=FEMALE,
        birth_date=date(1979, 1, 27),
        email="m.kuznetsova@example.ru",
        email_validated=True,
        consents=((SMS, True), (EMAIL, True)),
        purchase=5100,
        redeem=2000,
    ),
    DemoCustomer("+79112223344", "Соколов Алексей Игоревич", channel=SHOWROOM, store=NEVSKY, purchase=1200),
    DemoCustomer(
        "+79126665544",
        "Морозова Екатерина Андреевна",
        channel=SHOWROOM,
        store=EKB,
        card="2600000000039",
        purchase=890,
    ),
    DemoCustomer(
        "+79221112233", "Волков Сергей", channel=SHOWROOM, store=EKB, gender=MALE, consents=((SMS, True), (SMS, False))
    ),
    DemoCustomer(
        "+79153334455",
        "Лебедева Наталья Викторовна",
        email="n.lebedeva@example.ru",
        email_validated=True,
        site_user_id="site-10042",
        consents=((EMAIL, True),),
    ),
    DemoCustomer("+79264445566", "Новиков Павел Олегович", site_user_id="site-10056"),
    DemoCustomer("+79857776655", "Фёдорова Ирина", site_user_id="site-10061", purchase=980, bought_before_joining=True),
    DemoCustomer(
        "+79096543210",
        "Козлов Андрей Николаевич",
        channel=SHOWROOM,
        store=KHIMKI,
        gender=MALE,
        birth_date=date(1968, 6, 30),
        purchase=4300,
        bought_before_joining=True,
    ),
    DemoCustomer("+79213456789", "Попова Светлана Юрьевна", channel=SHOWROOM, store=NEVSKY, consents=((SMS, True),)),
    DemoCustomer("+79632221100", "Васильев Михаил", site_user_id="site-10078", consents=((EMAIL, False),)),
    # Retail members, English names.
    DemoCustomer(
        "+79160010203",
        "Emily Clarke",
        language="en",
        gender=FEMALE,
        email="emily.clarke@example.com",
        email_validated=True,
        site_user_id="site-10085",
        consents=((EMAIL, True), (PUSH, True)),
        purchase=1500,
    ),
    DemoCustomer(
        "+79035553311",
        "James Whitmore",
        channel=SHOWROOM,
        store=KHIMKI,
        language="en",
        gender=MALE,
        card="2600000000046",
        purchase=2750,
        redeem=500,
    ),
    DemoCustomer("+79252226677", "Olivia Bennett", channel=SHOWROOM, store=NEVSKY, language="en", purchase=640),
    DemoCustomer("+79818889900", "Daniel Hughes", language="en", site_user_id="site-10093", consents=((SMS, True),)),
    # Non-members: phones seen on receipts, nothing else known; their points wait for them to join.
    DemoCustomer("+79854441122", member=False, channel=ERP, purchase=1320),
    DemoCustomer("+79219990011", member=False, channel=SHOWROOM, store=NEVSKY, purchase=430),
    DemoCustomer("+79034567890", member=False, channel=ERP),
    DemoCustomer("+79122223300", member=False, channel=SHOWROOM, store=EKB, purchase=2100),
    DemoCustomer("+79175550123", member=False, channel=SHOWROOM, store=KHIMKI),
    # B2B: designers, HoReCa, developers; their points are on the B2B balance.
    DemoCustomer(
        "+79162345678",
        "Орлова Виктория Павловна",
        kind=B2B,
        company="Студия интерьеров «Орлова и партнёры»",
        b2b_role=Customer.B2bRole.DESIGNER,
        email="studio@orlova-design.example.ru",
        email_validated=True,
        site_user_id="site-10104",
        consents=((EMAIL, True),),
        purchase=8400,
    ),
    DemoCustomer(
        "+79817654321",
        "Thomas Reid",
        channel=SHOWROOM,
        store=NEVSKY,
        language="en",
        kind=B2B,
        company="Reid Interiors",
        b2b_role=Customer.B2bRole.DESIGNER,
        purchase=3600,
    ),
    DemoCustomer(
        "+79031234000",
        "Гончаров Максим",
        channel=SHOWROOM,
        store=KHIMKI,
        kind=B2B,
        company="«Гастроном Групп», сеть ресторанов",
        b2b_role=Customer.B2bRole.HORECA,
        card="2600000000053",
        purchase=12500,
    ),
    DemoCustomer(
        "+79226543210",
        "Белова Татьяна Евгеньевна",
        channel=SHOWROOM,
        store=EKB,
        kind=B2B,
        company="ГК «Уральский квартал»",
        b2b_role=Customer.B2bRole.DEVELOPER,
        purchase=21000,
    ),
    # A member blocked by staff: the points stay, spending stops.
    DemoCustomer(
        "+79268880077", "Григорьев Олег", channel=SHOWROOM, store=KHIMKI, gender=MALE, purchase=15000, block=True
    ),
    # Petrov's old phone, seen on receipts with a card, merged into his member record: the card and the
    # (members-only) points moved to it.
    DemoCustomer(
        "+79037003344",
        "Петров Дмитрий Алексеевич",
        member=False,
        channel=SHOWROOM,
        store=KHIMKI,
        card="2600000000060",
        purchase=1500,
        merge_into="+79057003344",
    ),
    # Asked to be forgotten: a nameless record that keeps its ledger for accounting.
    DemoCustomer(
        "+79039998877",
        "Зайцева Юлия",
        email="yu.zaitseva@example.ru",
        site_user_id="site-10120",
        consents=((SMS, True), (EMAIL, True)),
        purchase=700,
        anonymise=True,
    ),
]


@dataclass
class DemoSummary:
    created: list[str] = field(default_factory=list)


@transaction.atomic
def demo_data_load() -> DemoSummary:
    summary = DemoSummary()
    user_model = get_user_model()
    admin = user_model.objects.filter(username=DEMO_ADMIN_USERNAME).first()
    if admin is None:
        admin = user_model.objects.create_superuser(DEMO_ADMIN_USERNAME, "admin@example.com", DEMO_ADMIN_PASSWORD)
        summary.created.append(f"superuser {DEMO_ADMIN_USERNAME}")
    for code, name, kind, scopes in DEMO_CHANNELS:
        if not Channel.objects.filter(code=code).exists():
            channel_create(code=code, name=name, kind=kind, scopes=[str(scope) for scope in scopes])
            summary.created.append(f"channel {code}")
    if not ApiKey.objects.filter(key_hash=api_key_hash(DEMO_SITE_API_KEY)).exists():
        api_key_issue(channel=Channel.objects.get(code=SITE), name="demo", raw_key=DEMO_SITE_API_KEY)
        summary.created.append("demo site API key")
    for code, name, city in DEMO_STORES:
        # A plain reference row: stores have no rules to enforce, so no service.
        _, created = Store.objects.get_or_create(code=code, defaults={"name": name, "city": city})
        if created:
            summary.created.append(f"store {code}")
    channels = {channel.code: channel for channel in Channel.objects.filter(code__in=[SITE, SHOWROOM, ERP])}
    stores = {store.code: store for store in Store.objects.filter(code__in=[KHIMKI, NEVSKY, EKB])}
    staff = Actor(user=admin)
    summary.created.extend(demo_rules_load(now=timezone.now()))
    for spec in DEMO_CUSTOMERS:
        if _customer_present(spec):
            continue
        _customer_load(spec, channels=channels, stores=stores, staff=staff)
        summary.created.append(f"customer {spec.phone}")
    summary.created.extend(
        demo_orders_load(now=timezone.now(), site=channels[SITE], showroom=channels[SHOWROOM], store=stores[KHIMKI])
    )
    from staff.demo import demo_staff_load  # staff builds on every other app's demo data

    summary.created.extend(demo_staff_load(actor=staff))
    return summary


def _customer_present(spec: DemoCustomer) -> bool:
    if spec.anonymise and CustomerChange.objects.filter(action="anonymise", reason=ANONYMISE_REASON).exists():
        return True
    return Customer.objects.filter(phone=spec.phone).exists()  # merged duplicates included


def _customer_load(spec: DemoCustomer, *, channels: dict[str, Channel], stores: dict[str, Store], staff: Actor) -> None:
    """One customer's life so far, in the order it would have happened."""
    actor = Actor(channel=channels[spec.channel])
    store = stores.get(spec.store)
    customer = customer_create(
        phone=spec.phone,
        name=spec.name,
        email="" if spec.email_validated else spec.email,
        birth_date=spec.birth_date,
        gender=spec.gender,
        card_number=spec.card or None,
        kind=spec.kind,
        company=spec.company,
        b2b_role=spec.b2b_role,
        language=spec.language,
        store=store,
        external_id=spec.site_user_id if spec.channel == SITE else "",
        actor=actor,
    )
    if spec.site_user_id and spec.channel != SITE:
        site = Actor(channel=channels[SITE])
        customer_external_id_set(customer=customer, channel=site.channel, external_id=spec.site_user_id, actor=site)
    if spec.purchase and (not spec.member or spec.bought_before_joining):
        _purchase(customer, spec, actor)  # accrued to a non-member: members only until they join
    if spec.member:
        customer, _ = customer_join(customer=customer, actor=actor, store=store)
        if spec.purchase and not spec.bought_before_joining:
            _purchase(customer, spec, actor)
    if spec.pending:
        points_accrue(
            customer=customer,
            amount=spec.pending,
            kind=LotKind.PURCHASE,
            balance_type=customer_balance_type(customer),
            pending=True,
            operation_key=f"demo:{spec.phone}:pending",
            source_type="receipt",
            source_id=f"{_receipt(spec.phone)}-2",
            actor=actor,
            reason="order awaiting delivery",
        )
    if spec.redeem:
        points_redeem(
            customer=customer,
            amount=spec.redeem,
            balance_type=customer_balance_type(customer),
            operation_key=f"demo:{spec.phone}:redeem",
            actor=actor,
            reason="paid part of an order with points",
        )
    if spec.email_validated:
        customer = customer_update(customer=customer, actor=actor, email=spec.email)
        customer = email_validation_confirm(
            token=email_validation_token(customer), actor=actor, accept_marketing=(EMAIL, True) in spec.consents
        )
    for channel, granted in spec.consents:
        consent_set(
            customer=customer,
            channel=channel,
            granted=granted,
            source=ConsentEvent.Source.API,
            actor=actor,
            text_version=settings.CONSENT_TEXT_VERSION,
        )
    if spec.block:
        customer_block(customer=customer, actor=staff, reason=BLOCK_REASON)
    if spec.merge_into:
        survivor = Customer.objects.filter(phone=spec.merge_into, merged_into__isnull=True).first()
        if survivor is not None and survivor.membership != Customer.Membership.ANONYMISED:
            customer_merge(duplicate=customer, survivor=survivor, actor=staff, reason=MERGE_REASON)
    if spec.anonymise:
        customer_anonymise(customer=customer, actor=staff, reason=ANONYMISE_REASON)


def _purchase(customer: Customer, spec: DemoCustomer, actor: Actor) -> None:
    points_accrue(
        customer=customer,
        amount=spec.purchase,
        kind=LotKind.PURCHASE,
        balance_type=customer_balance_type(customer),
        operation_key=f"demo:{spec.phone}:purchase",
        source_type="receipt",
        source_id=_receipt(spec.phone),
        actor=actor,
        reason="purchase",
    )
