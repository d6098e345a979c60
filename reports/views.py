"""The Data download tab: ask for reports, watch pending tasks, download files.

Every view fetches the course through ``course_for_team_member`` (404 for an
unknown key, 403 outside the course team), downloads included: a file's URL
alone gives nobody a report."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from courses.selectors import course_for_team_member
from enrollments.services import batch_jobs_fail_stale

from .models import ReportTask
from .selectors import finished_reports, pending_tasks, report_for_download
from .services import report_request, reports_fail_stale


def _tasks_context(course) -> dict:
    # Nothing may show as pending forever, even with beat not running.
    reports_fail_stale()
    batch_jobs_fail_stale()
    pending = pending_tasks(course=course)
    return {"course": course, "pending": pending, "finished": finished_reports(course=course), "polling": bool(pending)}


def data_page(request, course, *, context: dict):
    """The tab itself, for ``courses.views.instructor_data`` (which did the permission check)."""
    context.update(_tasks_context(course))
    context["kinds"] = ReportTask.Kind.choices
    return render(request, "courses/instructor/data.html", context)


@login_required
@require_POST
def report_request_view(request, course_key):
    course = course_for_team_member(request, course_key)
    try:
        task, created = report_request(course=course, kind=request.POST.get("kind", ""), requester=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if created:
            messages.success(request, f"The report “{task.get_kind_display()}” is being produced; it is listed under Pending tasks, and you may leave this page meanwhile.")
        else:
            messages.info(request, f"The report “{task.get_kind_display()}” is already pending; it is listed under Pending tasks.")
    return redirect("instructor_data", course_key=course.key)


@login_required
@require_GET
def report_tasks_fragment(request, course_key):
    """htmx: Pending tasks and finished reports; stops the polling once nothing is pending."""
    course = course_for_team_member(request, course_key)
    context = _tasks_context(course)
    response = render(request, "reports/tasks.html#report-tasks", context)
    if not context["polling"]:
        return HttpResponseStopPolling(response.content)
    return response


@login_required
@require_GET
def report_download(request, course_key, report_id):
    course = course_for_team_member(request, course_key)
    task = report_for_download(course=course, report_id=report_id)
    return FileResponse(task.file.open("rb"), as_attachment=True, filename=task.filename, content_type="text/csv; charset=utf-8")
