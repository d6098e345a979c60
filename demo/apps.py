from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo data of ``make run`` (``python manage.py seed_demo``). It uses every
    app, so it sits on top of them all, and nothing imports it."""

    name = "demo"
    verbose_name = _("Demo data")
