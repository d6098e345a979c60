"""The learners table's per-row actions and the progress of large actions.

Each row of the learners table links its actions to ``learner_action``: a
confirm page (GET) naming the learner and what will change, with the reason
and the mode or cohort to choose; its POST applies the action through
``roster_apply`` and redirects (Post/Redirect/Get) to ``next`` or the learners
page, with a message. Every view fetches the course through
``course_for_team_member`` (404 for an unknown key, 403 outside the team) and
the row within that course (404 for another course's id)."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET

from courses.dashboard import dashboard_context
from courses.selectors import course_for_team_member
from enrollment_site.lib.polling import render_polled

from .forms_actions import RosterActionForm
from .models import RosterAction
from .selectors.actions import roster_job_for, roster_row_for
from .services import roster_apply, roster_result_message

CONFIRM_LABELS = {
    RosterAction.UNENROLL: gettext_lazy("Unenroll"),
    RosterAction.ENROLL_AGAIN: gettext_lazy("Enroll again"),
    RosterAction.CHANGE_MODE: gettext_lazy("Change mode"),
    RosterAction.MOVE_COHORT: pgettext_lazy("to another cohort", "Move"),
}


def learners_url(course) -> str:
    """The learners page of the course (the Learners tab)."""
    try:
        return reverse("instructor_learners", args=[course.key])
    except NoReverseMatch:  # the tab is served by the learners table's own views
        return f"/courses/{course.key}/instructor/learners/"


def _back_url(request, course) -> str:
    """Where to go after the action: ``next`` if it is a path on this site, else the learners page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return learners_url(course)


@login_required
def learner_action(request, course_key, enrollment_id, action):
    """Confirm (GET) and apply (POST) one action on one enrollment of the course."""
    course = course_for_team_member(request, course_key)
    if action not in RosterAction.values:
        raise Http404("No such action.")
    row = roster_row_for(course=course, enrollment_id=enrollment_id)
    if action == RosterAction.EXTEND:
        # One row is a selection of one: the bulk page's options, preview and confirmation.
        return redirect(reverse("learners_bulk", args=[course.key]) + "?" + urlencode({"action": action, "ids": row.enrollment.pk}))
    back = _back_url(request, course)
    form = RosterActionForm(request.POST if request.method == "POST" else None, course=course, action=action, current_mode=row.enrollment.mode, current_cohort=row.cohort)
    if request.method == "POST" and form.is_valid():
        try:
            result = roster_apply(actor=request.user, course=course, action=action, enrollment_ids=[row.enrollment.pk], **form.action_options())
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if result.refused_count:
                messages.error(request, roster_result_message(result, action=action))
            elif result.changed:
                messages.success(request, _done_message(row, action, form.cleaned_data))
            else:
                messages.info(request, _("Nothing was changed: %(why)s.") % {"why": _already(row, action, form.cleaned_data)})
            return redirect(back)
    context = dashboard_context(course=course, tab="learners")
    context.update({
        "row": row, "form": form, "action": action, "action_label": RosterAction(action).label,
        "confirm_label": CONFIRM_LABELS[RosterAction(action)], "back": back,
        "unchanged_reason": _unchanged_reason(row, action),
    })
    return render(request, "enrollments/instructor/learner_action.html", context, status=400 if form.errors else 200)


def _unchanged_reason(row, action) -> str:
    """Why the action would change nothing for this row as read ("" if it would):
    what the confirm page tells before anything is asked."""
    who = {"name": row.user.username}
    if action == RosterAction.UNENROLL and not row.enrollment.is_active:
        return _("%(name)s is not enrolled") % who
    if action == RosterAction.ENROLL_AGAIN and row.enrollment.is_active:
        return _("%(name)s is already enrolled") % who
    return ""


def _already(row, action, data: dict) -> str:
    """Why an applied action changed nothing: its target state already held
    when the row was locked (someone may have got there first since the page was read)."""
    who = {"name": row.user.username}
    if action == RosterAction.UNENROLL:
        return _("%(name)s is not enrolled") % who
    if action == RosterAction.ENROLL_AGAIN:
        return _("%(name)s is already enrolled") % who
    if action == RosterAction.CHANGE_MODE:
        return _("%(name)s is already in the %(mode)s mode") % {**who, "mode": data["mode"]}
    if data["cohort"]:
        return _("%(name)s is already in the cohort %(cohort)s") % {**who, "cohort": data["cohort"].name}
    return _("%(name)s is in no cohort") % who


def _done_message(row, action, data) -> str:
    values = {"name": row.user.username, "was": row.cohort}
    if action == RosterAction.UNENROLL:
        text = _("%(name)s was unenrolled.") % values
    elif action == RosterAction.ENROLL_AGAIN:
        text = _("%(name)s was enrolled again.") % values
    elif action == RosterAction.CHANGE_MODE:
        text = _("%(name)s is now in the %(mode)s mode (was %(was)s).") % {**values, "mode": data["mode"], "was": row.enrollment.mode}
    elif data["cohort"] is None:
        text = _("%(name)s is no longer in a cohort (was in %(was)s).") % values
    elif row.cohort:
        text = _("%(name)s is now in the cohort %(cohort)s (was in %(was)s).") % {**values, "cohort": data["cohort"].name}
    else:
        text = _("%(name)s is now in the cohort %(cohort)s.") % {**values, "cohort": data["cohort"].name}
    if data.get("reason"):
        text = " ".join((text, _("Reason: “%(reason)s”.") % {"reason": data["reason"]}))
    return text


@login_required
@require_GET
def roster_job_status(request, course_key, job_id):
    """A large action's progress page; as an htmx fragment it is polled until the job is done."""
    course = course_for_team_member(request, course_key)
    job = roster_job_for(course=course, public_id=job_id)
    context = dashboard_context(course=course, tab="learners")
    context.update({"job": job, "learners_url": learners_url(course)})
    if request.htmx:
        return render_polled(request, "enrollments/instructor/roster_job.html#roster-job", context, pending=job.is_pending)
    return render(request, "enrollments/instructor/roster_job.html", context)
