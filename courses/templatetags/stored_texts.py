from django import template

from enrollment_site.lib.stored_texts import shown, shown_error

register = template.Library()


@register.filter(name="shown")
def shown_filter(value: str) -> str:
    """A stored system text (an audit reason, a history summary) in the reader's language; a person's own text as it is."""
    return shown(value or "")


@register.filter(name="shown_error")
def shown_error_filter(value: str) -> str:
    """A job's stored error in the reader's language where it is a known message."""
    return shown_error(value or "")
