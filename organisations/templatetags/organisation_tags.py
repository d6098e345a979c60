from django import template

from enrollments.models import Source
from organisations.rules import is_manager

register = template.Library()


@register.filter
def manages_anyone(user) -> bool:
    """For the menu: My Team is shown to managers only (one EXISTS query)."""
    return is_manager(user)


@register.filter
def source_label(value: str) -> str:
    """A stored audit source (``rule``) as people read it, in their language (Rule)."""
    return str(dict(Source.choices).get(value, value))
