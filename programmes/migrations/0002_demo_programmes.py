"""The demo programmes of the case studies: retail (Basic, Silver, Gold, Platinum) and B2B (Partner).
Reversible: going back deletes them."""

from django.db import migrations

from programmes.demo import demo_programmes_create, demo_programmes_delete


def create(apps, schema_editor):
    demo_programmes_create(
        apps.get_model("programmes", "Programme"), apps.get_model("programmes", "Tier"), apps.get_model("points", "BalanceType")
    )


def delete(apps, schema_editor):
    demo_programmes_delete(apps.get_model("programmes", "Programme"), apps.get_model("programmes", "Tier"))


class Migration(migrations.Migration):
    dependencies = [("programmes", "0001_initial"), ("points", "0002_balance_types_and_journal_guard")]

    operations = [migrations.RunPython(create, delete)]
