"""Default balance types (retail, b2b) with the case studies' lifetimes, and the journal's database guard."""

from django.db import migrations

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION points_journal_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the points journal is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER points_entry_append_only BEFORE UPDATE OR DELETE ON points_entry
    FOR EACH ROW EXECUTE FUNCTION points_journal_append_only();
CREATE TRIGGER points_allocation_append_only BEFORE UPDATE OR DELETE ON points_allocation
    FOR EACH ROW EXECUTE FUNCTION points_journal_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS points_entry_append_only ON points_entry;
DROP TRIGGER IF EXISTS points_allocation_append_only ON points_allocation;
DROP FUNCTION IF EXISTS points_journal_append_only();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


def balance_types(apps, schema_editor):
    BalanceType = apps.get_model("points", "BalanceType")
    LotLifetime = apps.get_model("points", "LotLifetime")
    for code, name in (("retail", "Retail points"), ("b2b", "B2B points")):
        balance_type, _ = BalanceType.objects.get_or_create(code=code, defaults={"name": name,
                                                                                  "default_lifetime_days": 365})
        # Welcome points live 3 months (F-LED-5, F-CMP-1); everything else a year.
        LotLifetime.objects.get_or_create(balance_type=balance_type, kind="welcome", defaults={"lifetime_days": 90})


class Migration(migrations.Migration):
    dependencies = [("points", "0001_initial")]

    operations = [
        migrations.RunPython(balance_types, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]
