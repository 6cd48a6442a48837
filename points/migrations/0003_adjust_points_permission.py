"""The permission to adjust points by hand (SPEC F-STAFF-1: CRM managers yes, showroom staff no).

Created here rather than in ``Entry.Meta.permissions`` so the ledger models stay untouched; it hangs
on the journal entry's content type, so it reads as ``points.adjust_points``.
"""

from django.db import migrations

CODENAME = "adjust_points"
NAME = "Can adjust points manually"


def create_permission(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    # On a fresh database content types are only created after all migrations (post_migrate).
    content_type, _ = ContentType.objects.get_or_create(app_label="points", model="entry")
    Permission.objects.get_or_create(content_type=content_type, codename=CODENAME, defaults={"name": NAME})


def delete_permission(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="points", codename=CODENAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0002_balance_types_and_journal_guard"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_permission, delete_permission)]
