"""Scheduled order jobs (beat). Each is idempotent and safe to run twice or concurrently."""

from celery import shared_task

from orders.services.reservations import reservations_expire_due


@shared_task(name="orders.tasks.reservations_expire")
def reservations_expire_task() -> int:
    return reservations_expire_due()
