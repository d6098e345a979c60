from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self):
        from courses.dashboard import Tab, tab_register

        tab_register(Tab(key="data", label="Data download", url_name="instructor_data", order=30))
