from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from integrations import checks, schema  # noqa: F401  (register the deploy checks, the OpenAPI auth extension)
        from integrations.models import ApiKey, Channel
        from integrations.selectors import api_keys_forget

        for model in (ApiKey, Channel):  # a revoked key or a deactivated channel counts at once in this process
            post_save.connect(api_keys_forget, sender=model, dispatch_uid=f"api_keys_forget_{model.__name__}_save")
            post_delete.connect(api_keys_forget, sender=model, dispatch_uid=f"api_keys_forget_{model.__name__}_delete")
