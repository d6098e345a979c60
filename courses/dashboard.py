"""The instructor dashboard's shell: the tab registry and the context every tab starts from.

The shell lives in courses, below the apps whose tabs it shows. Each of those apps
registers its tab in its ``AppConfig.ready()`` (enrollments: Course info and
Membership; reports: Data download; codes: Codes) and serves the tab's view, URL
and template itself, so courses never imports them. A tab's view fetches the
course with ``courses.selectors.course_for_team_member`` (404 for an unknown key,
403 outside the team) and renders a template that extends
``courses/instructor/base.html`` with ``dashboard_context``."""

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext

from .models import Course


@dataclass(frozen=True)
class Tab:
    key: str  # what a page passes as ``tab`` to mark its tab active
    label: str
    url_name: str  # reversed with the course key
    order: int  # left to right


_tabs: dict[str, Tab] = {}


def tab_register(tab: Tab) -> None:
    """Show ``tab`` on every course's dashboard. Registering a key again replaces
    the tab, so a second ``ready()`` (as in some test runners) changes nothing."""
    _tabs[tab.key] = tab


def dashboard_tabs() -> list[Tab]:
    """The registered tabs, left to right."""
    return sorted(_tabs.values(), key=lambda tab: (tab.order, tab.key))


def dashboard_tab_links(*, course: Course, active: str) -> list[dict]:
    """The tab bar of ``course``'s dashboard: label, URL and whether it is ``active``."""
    return [
        # Each app marks its tab's label; translated here, when the tab bar is drawn.
        {"label": gettext(str(tab.label)), "url": reverse(tab.url_name, args=[course.key]), "active": tab.key == active}
        for tab in dashboard_tabs()
    ]


def dashboard_context(*, course: Course, tab: str) -> dict:
    """What ``courses/instructor/base.html`` needs: ``course`` (which the view
    fetched through ``course_for_team_member``) and the key of the current ``tab``."""
    return {"course": course, "tab": tab}
