from celery import shared_task
from django.core.mail import send_mail

from customers.services.email import email_validation_message


@shared_task(
    name="customers.tasks.send_validation_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_validation_email_task(email: str, token: str, language: str) -> None:
    """Email the validation link; retried with backoff while the mail server is unreachable."""
    subject, body = email_validation_message(token, language)
    send_mail(subject, body, None, [email])
