"""The instructor dashboard's entry: its tabs are served by the apps that own them
(see ``courses.dashboard``)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from .dashboard import dashboard_tabs
from .selectors import course_for_team_member


@login_required
def instructor_dashboard(request, course_key):
    """The dashboard opens on its first tab (Course info)."""
    course = course_for_team_member(request, course_key)
    return redirect(dashboard_tabs()[0].url_name, course_key=course.key)
