"""Indexes of the ledger admin on tens of millions of rows (F-STAFF-4): the lot list filtered by state or kind and
the journal filtered by kind, each newest first (the lists' default order, ``-id``), read from the index without
scanning the rows of other states or kinds."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0007_alter_entry_kind"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(fields=["kind", "-id"], name="entry_by_kind"),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(fields=["state", "-id"], name="lot_by_state"),
        ),
        migrations.AddIndex(
            model_name="lot",
            index=models.Index(fields=["kind", "-id"], name="lot_by_kind"),
        ),
    ]
