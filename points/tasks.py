"""Scheduled ledger jobs (beat). Each is idempotent and safe to run twice or concurrently."""

from celery import shared_task

from points.services import (
    points_expire_due,
    points_holds_release_expired,
    points_reset_run,
    points_resets_run_due,
    points_unlock_due,
)


@shared_task(name="points.tasks.expire_due")
def points_expire_due_task() -> int:
    return points_expire_due().lots


@shared_task(name="points.tasks.release_expired_holds")
def points_release_expired_holds_task() -> int:
    return points_holds_release_expired()


@shared_task(name="points.tasks.unlock_due")
def points_unlock_due_task() -> int:
    return points_unlock_due()


@shared_task(name="points.tasks.run_reset")
def points_reset_run_task(reset_id: int) -> int:
    return points_reset_run(reset_id=reset_id).accounts_reset


@shared_task(name="points.tasks.run_due_resets")
def points_resets_run_due_task() -> int:
    return points_resets_run_due()
