from celery import shared_task

from integrations.services.idempotency import idempotency_keys_purge


@shared_task(name="integrations.tasks.idempotency_keys_purge")
def idempotency_keys_purge_task() -> int:
    """Hourly (beat): forget Idempotency-Keys past their retention period. Idempotent."""
    return idempotency_keys_purge()
