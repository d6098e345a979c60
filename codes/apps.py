from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CodesConfig(AppConfig):
    name = "codes"
    verbose_name = _("Enrollment codes")

    def ready(self):
        from courses.dashboard import Tab, tab_register

        from . import reasons  # noqa: F401 (registers the stored texts shown translated)

        tab_register(Tab(key="codes", label=_("Codes"), url_name="instructor_codes", order=40))
