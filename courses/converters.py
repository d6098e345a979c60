from .models import COURSE_KEY_PATTERN


class CourseKeyConverter:
    """URL converter for course keys such as ``course-v1:Demo+ENR101+2026``."""

    regex = COURSE_KEY_PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return str(value)
