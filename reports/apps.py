from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports")

    def ready(self):
        from courses.dashboard import Tab, tab_register

        tab_register(Tab(key="data", label=_("Data download"), url_name="instructor_data", order=30))
