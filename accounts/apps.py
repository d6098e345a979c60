from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        # The token cache's signals, in every process: one that never serves the
        # API (the admin's) still has to drop a deactivated user's shared entry.
        from . import authentication  # noqa: F401
