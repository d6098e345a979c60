"""The instructor dashboard's Settings tab: the course's enrollment settings
(edited by course admins, read by course staff), its cohorts (created,
renamed and deleted by the course team) and the history of both.

Every view fetches the course through ``course_for_team_member`` (404 for an
unknown key, 403 outside the team); saving settings also needs
``can_change_course_settings`` (403 for course staff), and a cohort is looked
up within the course (404 for another course's)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from courses.dashboard import dashboard_context
from courses.rules import can_change_course_settings
from courses.selectors import cohort_of_course, cohorts_with_counts, course_for_team_member, course_settings_history

from .forms_settings import CohortDeleteForm, CohortNameForm, CourseSettingsForm
from .services import cohort_create, cohort_delete, cohort_rename, course_settings_update, enrollment_key_generate, settings_change_summary


def _focus_first_error(form) -> None:
    """Put the focus on the first field in error, where the person fixes it."""
    for name in form.fields:
        if name in form.errors:
            form.fields[name].widget.attrs["autofocus"] = True
            return


def settings_render(request, course, *, form=None, cohort_form=None, status=200, key_generated=False):
    """The Settings tab: the settings form (read-only for course staff), the cohorts and the history."""
    can_edit = can_change_course_settings(request.user, course)
    form = form or CourseSettingsForm(initial=CourseSettingsForm.initial_for(course))
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    context = dashboard_context(course=course, tab="settings")
    context.update({
        "form": form, "can_edit": can_edit, "cohort_form": cohort_form or CohortNameForm(auto_id="id_cohort_%s"),
        "cohorts": cohorts_with_counts(course=course),
        "history": [(change, settings_change_summary(change)) for change in course_settings_history(course=course)],
        "cap_needs_confirmation": bool(form.is_bound and form.has_error("max_enrollments", "cap_below_count")) or bool(form.data.get("confirm_cap")),
        "key_generated": key_generated, "time_zone": settings.TIME_ZONE,
    })
    return render(request, "enrollments/instructor/settings.html", context, status=status)


@login_required
def instructor_settings(request, course_key):
    """GET: the settings; POST: save them (course admins), or fill in a generated key (not saved until Save)."""
    course = course_for_team_member(request, course_key)
    if request.method != "POST":
        return settings_render(request, course)
    if not can_change_course_settings(request.user, course):
        raise PermissionDenied(_("Only course admins may change the course's settings."))
    if "generate_key" in request.POST:
        # Shown, not saved: the admin sees the key and saves it with the rest.
        initial = {name: request.POST.getlist(name) if name == "modes" else request.POST.get(name) for name in CourseSettingsForm.base_fields}
        initial["enrollment_key"] = enrollment_key_generate()
        form = CourseSettingsForm(initial=initial)
        form.fields["enrollment_key"].widget.attrs["autofocus"] = True
        return settings_render(request, course, form=form, key_generated=True)
    form = CourseSettingsForm(request.POST)
    if form.is_valid():
        try:
            changes = course_settings_update(course=course, actor=request.user, confirm_cap=form.cleaned_data["confirm_cap"], **form.settings())
        except ValidationError as exc:
            for field, errors in exc.error_dict.items():
                for error in errors:
                    form.add_error(field, error)
        else:
            if changes.fields:
                messages.success(request, _("Settings saved. %(summary)s.") % {"summary": changes.summary_shown})
            else:
                messages.info(request, _("Nothing was changed: the settings are as they were."))
            return redirect("instructor_settings", course_key=course.key)
    _focus_first_error(form)
    return settings_render(request, course, form=form, status=400)


@login_required
@require_POST
def cohort_add(request, course_key):
    course = course_for_team_member(request, course_key)
    form = CohortNameForm(request.POST, auto_id="id_cohort_%s")
    if form.is_valid():
        try:
            cohort = cohort_create(course=course, name=form.cleaned_data["name"], actor=request.user)
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            messages.success(request, _("Cohort %(name)s created.") % {"name": cohort.name})
            return redirect(reverse("instructor_settings", args=[course.key]) + "#cohorts")
    _focus_first_error(form)
    return settings_render(request, course, cohort_form=form, status=400)


@login_required
def cohort_rename_view(request, course_key, cohort_id):
    course = course_for_team_member(request, course_key)
    cohort = cohort_of_course(course=course, cohort_id=cohort_id)
    form = CohortNameForm(request.POST if request.method == "POST" else None, initial={"name": cohort.name})
    if request.method == "POST" and form.is_valid():
        old = cohort.name
        try:
            cohort_rename(cohort=cohort, name=form.cleaned_data["name"], actor=request.user)
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            if old != cohort.name:
                messages.success(request, _("Cohort %(old)s is now %(new)s.") % {"old": old, "new": cohort.name})
            else:
                messages.success(request, _("Nothing was changed: the name is the same."))
            return redirect(reverse("instructor_settings", args=[course.key]) + "#cohorts")
    _focus_first_error(form)
    if not form.errors:
        form.fields["name"].widget.attrs["autofocus"] = True
    context = dashboard_context(course=course, tab="settings")
    context.update({"cohort": cohort, "form": form})
    return render(request, "enrollments/instructor/cohort_rename.html", context, status=400 if form.errors else 200)


@login_required
def cohort_delete_view(request, course_key, cohort_id):
    """GET: ask first, saying how many members fall back to no cohort; POST: delete."""
    course = course_for_team_member(request, course_key)
    cohort = cohort_of_course(course=course, cohort_id=cohort_id)
    form = CohortDeleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        name = cohort.name
        count = cohort_delete(cohort=cohort, actor=request.user, reason=form.cleaned_data["reason"])
        messages.success(request, ngettext(
            "Cohort %(name)s deleted; its %(count)s member is in no cohort now.",
            "Cohort %(name)s deleted; its %(count)s members are in no cohort now.", count,
        ) % {"name": name, "count": number_format(count, force_grouping=True)})
        return redirect(reverse("instructor_settings", args=[course.key]) + "#cohorts")
    _focus_first_error(form)
    context = dashboard_context(course=course, tab="settings")
    context.update({"cohort": cohort, "form": form, "member_count": cohort.memberships.count()})
    return render(request, "enrollments/instructor/cohort_delete.html", context, status=400 if form.errors else 200)
