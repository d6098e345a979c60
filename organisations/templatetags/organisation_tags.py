from django import template

from organisations.rules import is_manager

register = template.Library()


@register.filter
def manages_anyone(user) -> bool:
    """For the menu: My Team is shown to managers only (one EXISTS query)."""
    return is_manager(user)
