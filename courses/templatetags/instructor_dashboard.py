from django import template

from courses.dashboard import dashboard_tab_links

register = template.Library()


@register.inclusion_tag("courses/instructor/_tabs.html")
def instructor_tabs(course, tab):
    """The dashboard's tab bar, from the registry: every page extending
    ``courses/instructor/base.html`` gets it, whichever app renders the page."""
    return {"tabs": dashboard_tab_links(course=course, active=tab)}
