"""Indexes of the orders admin on millions of orders (F-STAFF-4): the list filtered by store (and a date range) or
status, newest first, the rare values of its other filters (offline, unlocking on payment), and the search by an anonymous order's card number (the search ORs it with indexed conditions: one
condition without an index would make PostgreSQL scan the whole table)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["store", "-created_at", "-id"], name="orders_by_store_recent"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("customer__isnull", True)), fields=["card_number"], name="orders_anonymous_by_card"
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "-created_at", "-id"], name="orders_by_status_recent"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("offline", True)), fields=["-created_at"], name="orders_offline_recent"
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("unlocks_on", "payment")), fields=["-created_at"], name="orders_unlock_on_payment"
            ),
        ),
    ]
