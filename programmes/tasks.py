"""Scheduled tier jobs (beat). Idempotent and safe to run twice or concurrently."""

from celery import shared_task

from programmes.models import Programme
from programmes.services import tiers_recalculate


@shared_task(name="programmes.tasks.tiers_recalculate")
def tiers_recalculate_task() -> dict[str, dict[str, int]]:
    """Recalculate the tiers of every active programme (daily): upgrades, downgrades after the grace period,
    expired manual assignments. Returns the counts by programme code."""
    counts = {}
    for programme in Programme.objects.filter(is_active=True).order_by("pk"):
        result = tiers_recalculate(programme=programme)
        counts[programme.code] = {"customers": result.customers, **result.outcomes}
    return counts
