from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProgrammesConfig(AppConfig):
    name = "programmes"
    verbose_name = _("Programmes and tiers")

    def ready(self) -> None:
        from programmes import receivers  # noqa: F401  (moves purchases and tiers on a customer merge)
