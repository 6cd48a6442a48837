from celery import shared_task

from integrations.services.idempotency import idempotency_keys_purge
from integrations.sms import SmsError, send_sms


@shared_task(name="integrations.tasks.idempotency_keys_purge")
def idempotency_keys_purge_task() -> int:
    """Hourly (beat): forget Idempotency-Keys past their retention period. Idempotent."""
    return idempotency_keys_purge()


@shared_task(
    name="integrations.tasks.send_sms",
    autoretry_for=(SmsError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_sms_task(phone: str, text: str) -> None:
    """Deliver one SMS through the configured backend, retried with backoff while the gateway fails."""
    send_sms(phone=phone, text=text)
