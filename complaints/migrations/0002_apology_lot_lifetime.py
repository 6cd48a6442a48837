"""Apology points live 180 days: a lot lifetime of kind ``apology`` for every balance type that has none."""

from django.db import migrations

APOLOGY_LIFETIME_DAYS = 180


def apology_lifetimes(apps, schema_editor):
    BalanceType = apps.get_model("points", "BalanceType")
    LotLifetime = apps.get_model("points", "LotLifetime")
    for balance_type in BalanceType.objects.all():
        LotLifetime.objects.get_or_create(
            balance_type=balance_type, kind="apology", defaults={"lifetime_days": APOLOGY_LIFETIME_DAYS}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("complaints", "0001_initial"),
        ("points", "0002_balance_types_and_journal_guard"),
    ]

    operations = [migrations.RunPython(apology_lifetimes, migrations.RunPython.noop)]
