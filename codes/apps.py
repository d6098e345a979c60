from django.apps import AppConfig


class CodesConfig(AppConfig):
    name = "codes"
    verbose_name = "Enrollment codes"

    def ready(self):
        from courses.dashboard import Tab, tab_register

        tab_register(Tab(key="codes", label="Codes", url_name="instructor_codes", order=40))
