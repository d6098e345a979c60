"""Undo of an operation: a preview of what undo would restore (GET), then
Confirm (POST), which redirects to the audit log showing the undo's own
operation (Post/Redirect/Get); an undo of more than ``ENROLLMENT_SYNC_LIMIT``
people is queued as a job instead, and Confirm redirects to its progress page
(polled with htmx until it is done).

The course is fetched with ``course_for_team_member`` (404 for an unknown
key, 403 outside the team); an operation id the course does not have answers
404, whichever course it belongs to."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from courses.dashboard import dashboard_context
from courses.selectors import course_for_team_member
from enrollment_site.lib.polling import render_polled
from enrollment_site.lib.stored_texts import shown

from .forms_undo import UndoForm
from .models import UndoJob
from .selectors.actions import undo_job_for
from .services.undo import UndoPreview, undo_preview, undo_start

# People listed by name on the preview and in the result's message; the rest are counted.
LISTED = 50


@login_required
@require_http_methods(["GET", "POST"])
def operation_undo_view(request, course_key, operation_id):
    course = course_for_team_member(request, course_key)
    form = UndoForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            done = undo_start(course=course, operation_id=operation_id, actor=request.user, email_students=form.cleaned_data["email_students"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("operation_undo", course_key=course.key, operation_id=operation_id)
        if done is None:
            raise Http404("No such operation in this course.")
        if isinstance(done, UndoJob):
            return redirect("undo_job_status", course_key=course.key, job_id=done.public_id)
        _tell(request, done)
        return redirect(reverse("instructor_audit", args=[course.key]) + f"?operation={done.undo_operation_id}")
    preview = undo_preview(course=course, operation_id=operation_id, viewer=request.user)
    if preview is None:
        raise Http404("No such operation in this course.")
    plan = preview.plan
    context = {
        **dashboard_context(course=course, tab="audit"), "form": form, "preview": preview,
        "restores": plan.restores[:LISTED], "left_alone": plan.left_alone[:LISTED],
        "restore_count": len(plan.restores), "left_alone_count": len(plan.left_alone),
        # A multi-course operation's people, course by course (this course first), the first LISTED of each.
        "parts": [
            {"course": part.course, "restores": part.restores[:LISTED], "restore_count": len(part.restores),
             "left_alone": part.left_alone[:LISTED], "left_alone_count": len(part.left_alone)}
            for part in sorted(preview.parts, key=lambda part: (part.course.pk != course.pk, part.course.display_name, part.course.pk))
        ],
    }
    return render(request, "enrollments/instructor/undo.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET"])
def undo_job_status(request, course_key, job_id):
    """A large undo's progress page; as an htmx fragment it is polled until the job is done."""
    course = course_for_team_member(request, course_key)
    job = undo_job_for(course=course, public_id=job_id)
    context = {**dashboard_context(course=course, tab="audit"), "job": job}
    if request.htmx:
        return render_polled(request, "enrollments/instructor/undo_job.html#undo-job", context, pending=job.is_pending)
    return render(request, "enrollments/instructor/undo_job.html", context)


def _tell(request, done: UndoPreview) -> None:
    restored, alone = len(done.plan.restores), done.plan.left_alone
    messages.success(request, ngettext(
        "Undone: %(n)s person restored as before the operation.", "Undone: %(n)s people restored as before the operation.", restored,
    ) % {"n": number_format(restored, force_grouping=True)})
    reopened = len(done.plan.end_removed)
    if reopened:
        messages.info(request, ngettext(
            "%(n)s person got their access back: their access period had ended, so its end date was removed.",
            "%(n)s people got their access back: their access period had ended, so its end date was removed.", reopened,
        ) % {"n": number_format(reopened, force_grouping=True)})
    if alone:
        listed = "; ".join(f"{p.identifier}: {shown(p.why)}" for p in alone[:LISTED])
        more = " … " + _("and %(n)s more") % {"n": number_format(len(alone) - LISTED, force_grouping=True)} if len(alone) > LISTED else ""
        messages.warning(request, ngettext(
            "%(n)s person was left alone (changed since): %(list)s%(more)s", "%(n)s people were left alone (changed since): %(list)s%(more)s", len(alone),
        ) % {"n": number_format(len(alone), force_grouping=True), "list": listed, "more": more})
