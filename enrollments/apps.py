from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnrollmentsConfig(AppConfig):
    name = "enrollments"
    verbose_name = _("Enrollments")

    def ready(self):
        from courses.dashboard import Tab, tab_register

        from . import reasons, signals  # noqa: F401 (reasons: registers the stored texts shown translated)

        tab_register(Tab(key="info", label=_("Course info"), url_name="instructor_info", order=10))
        tab_register(Tab(key="membership", label=_("Membership"), url_name="instructor_membership", order=20))
        tab_register(Tab(key="learners", label=_("Learners"), url_name="instructor_learners", order=25))
        tab_register(Tab(key="settings", label=_("Settings"), url_name="instructor_settings", order=50))
        tab_register(Tab(key="audit", label=_("Audit log"), url_name="instructor_audit", order=70))
