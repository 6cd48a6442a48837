"""Audit rows cannot be edited or deleted, not even from a database shell (PostgreSQL trigger)."""

from django.db import migrations

GUARD_SQL = """
CREATE OR REPLACE FUNCTION staff_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER staff_auditrecord_append_only BEFORE UPDATE OR DELETE ON staff_auditrecord
    FOR EACH ROW EXECUTE FUNCTION staff_audit_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS staff_auditrecord_append_only ON staff_auditrecord;
DROP FUNCTION IF EXISTS staff_audit_append_only();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD_SQL, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("staff", "0001_initial")]

    operations = [migrations.RunPython(guard, unguard)]
