from django import template

from courses.models import Mode

register = template.Library()


@register.filter
def mode_label(value: str) -> str:
    """A stored mode (``verified``) as people read it, in their language (Verified)."""
    return str(dict(Mode.choices).get(value, value))
