"""Staff users in their roles and stores."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from staff.models import StoreMembership

PASSWORD = "staff-password"


class StaffUserFactory(factory.django.DjangoModelFactory):
    """``StaffUserFactory(role=SHOWROOM_STAFF, stores=[store])``: a staff user in one of ``core.roles``' groups
    (synced by the migrations) working in ``stores``."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def stores(self, create, extracted, **kwargs):
        for store in extracted or ():
            StoreMembership.objects.create(user=self, store=store)


def roles_ready() -> None:
    """The role groups with their permissions, also after a transactional test flushed the database: post_migrate
    restores the models' own permissions and the groups, not the permission a migration created (adjusting points),
    so that one is put back first."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from core.roles import roles_sync

    entry = ContentType.objects.get_by_natural_key("points", "entry")
    Permission.objects.get_or_create(
        content_type=entry, codename="adjust_points", defaults={"name": "Can adjust points manually"}
    )
    roles_sync()
