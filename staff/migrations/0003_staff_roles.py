"""The staff roles (SPEC F-STAFF-1) as groups with their permissions: ``core.roles``.

On a fresh database Django creates permissions only after all migrations (post_migrate): they are created here
first for the models that exist at this point, so the groups come with their permissions. ``migrate`` syncs the
groups again at its end (``core.roles.roles_sync_after_migrate``), which adds the permissions of later models.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from core.roles import ROLES, roles_sync


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        # Historical app configs have no models module; create_permissions skips such apps.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    roles_sync(apps=apps)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0002_audit_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("catalog", "0001_initial"),
        ("customers", "0002_identity_consents_history_sms_codes"),
        ("orders", "0001_initial"),
        ("points", "0003_adjust_points_permission"),
        ("programmes", "0003_rules"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
