"""Indexes of the customer admin on millions of customers (F-STAFF-4): the rare values of its filters (B2B,
email validated), newest first, and the name search, index-backed on PostgreSQL.

Django renders ``name__icontains`` as ``UPPER(name::text) LIKE UPPER('%term%')``: a GIN trigram index over
``UPPER(name)`` serves it (for three letters or more; the admin searches names only from three letters).

The index is PostgreSQL's alone (pg_trgm, GIN), so it is built on PostgreSQL only and kept out of the project
state: in the state (``Meta.indexes``) SQLite, the development default, would try to build it whenever a later
migration makes it rebuild the customers table. ``customer_name_trgm`` is therefore not in ``Customer.Meta``; a
later change to it needs a migration like this one. The statement is spelled out rather than built from
``GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"))``, which renders valid SQL only with
``django.contrib.postgres`` installed.
"""

from django.db import migrations, models

CREATE = "CREATE INDEX IF NOT EXISTS customer_name_trgm ON customers_customer USING gin (UPPER(name) gin_trgm_ops)"
DROP = "DROP INDEX IF EXISTS customer_name_trgm"


def name_index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite: the name search reads the table, as it always did
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(CREATE)


def name_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)  # pg_trgm stays: other things may use it


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_identity_consents_history_sms_codes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(condition=models.Q(("kind", "b2b")), fields=["-id"], name="customer_b2b_recent"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                condition=models.Q(("email_validated_at__isnull", False)),
                fields=["-id"],
                name="customer_email_validated",
            ),
        ),
        migrations.RunPython(name_index_create, name_index_drop, elidable=False),
    ]
