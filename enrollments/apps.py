from django.apps import AppConfig


class EnrollmentsConfig(AppConfig):
    name = "enrollments"
    verbose_name = "Enrollments"

    def ready(self):
        from courses.dashboard import Tab, tab_register

        from . import signals  # noqa: F401

        tab_register(Tab(key="info", label="Course info", url_name="instructor_info", order=10))
        tab_register(Tab(key="membership", label="Membership", url_name="instructor_membership", order=20))
        tab_register(Tab(key="learners", label="Learners", url_name="instructor_learners", order=25))
        tab_register(Tab(key="settings", label="Settings", url_name="instructor_settings", order=50))
        tab_register(Tab(key="audit", label="Audit log", url_name="instructor_audit", order=70))
