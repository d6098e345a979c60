from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "courses"
    verbose_name = _("Courses")

    def ready(self):
        # Once per process (URLconfs may be imported again, say by tests).
        from django.urls import register_converter

        from .converters import CourseKeyConverter

        register_converter(CourseKeyConverter, "course_key")
