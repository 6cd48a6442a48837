from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from core.roles import roles_sync_after_migrate

        # Like Django's own permission sync: groups follow the code after every migrate.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="core.roles_sync")
