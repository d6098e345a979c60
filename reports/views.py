"""The instructor dashboard's Data download tab: ask for reports, watch pending tasks, download files,
look back at finished tasks (Task history) and undo their changes.

Every view fetches the course through ``course_for_team_member`` (404 for an
unknown key, 403 outside the course team), downloads included: a file's URL
alone gives nobody a report."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from courses.dashboard import dashboard_context
from courses.selectors import course_for_team_member
from enrollment_site.lib.polling import render_polled

from .models import ReportTask
from .selectors import InvalidHistoryCursor, finished_reports, pending_tasks, report_for_download, task_history
from .services import report_request


def _tasks_context(course, viewer) -> dict:
    # Read only: what a lost worker left is failed by the beat's sweep, never on a GET.
    pending = pending_tasks(course=course, viewer=viewer)
    return {"course": course, "pending": pending, "finished": finished_reports(course=course), "polling": bool(pending)}


@login_required
def instructor_data(request, course_key):
    """The instructor dashboard's Data download tab (registered in apps.py): report
    buttons, pending tasks and finished report files."""
    course = course_for_team_member(request, course_key)
    context = dashboard_context(course=course, tab="data")
    context.update(_tasks_context(course, request.user))
    context["kinds"] = ReportTask.Kind.choices
    # Without a broker (the embedded default) a report is produced within the request.
    context["reports_in_process"] = settings.CELERY_TASK_ALWAYS_EAGER
    # The history is not in the polled fragment: a refresh would take the reader back to its first page.
    context["undo_days"] = settings.UNDO_DAYS
    try:
        context["history"] = task_history(course=course, viewer=request.user, cursor=request.GET.get("history", ""))
    except InvalidHistoryCursor as exc:
        context["history_error"] = exc.message
        context["history"] = task_history(course=course, viewer=request.user)
        return render(request, "reports/instructor/data.html", context, status=400)
    return render(request, "reports/instructor/data.html", context)


@login_required
@require_POST
def report_request_view(request, course_key):
    course = course_for_team_member(request, course_key)
    try:
        task, created = report_request(
            course=course, kind=request.POST.get("kind", ""), requester=request.user, language=request.LANGUAGE_CODE,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if created:
            # Without a broker the report already ran in-process by now (the task
            # is sent on commit); with one it waits for a worker. Say which, from the row.
            task.refresh_from_db()
            _tell_outcome(request, course, task)
        else:
            messages.info(
                request, _("The report “%(report)s” is already pending; it is listed under Pending tasks.") % {"report": task.get_kind_display()}
            )
    return redirect("instructor_data", course_key=course.key)


def _tell_outcome(request, course, task: ReportTask) -> None:
    name = task.get_kind_display()
    if task.status == ReportTask.Status.SUCCEEDED:
        rows = ngettext("%(count)s row", "%(count)s rows", task.total) % {"count": intcomma(task.total)}
        link = format_html('<a href="{}" class="alert-link">{}</a>', reverse("report_download", args=[course.key, task.pk]), task.filename)
        # The sentence is translated whole; format_html escapes its pieces into it.
        messages.success(request, format_html(_("The report “{report}” is ready: {link} ({rows})."), report=name, link=link, rows=rows))
    elif task.status == ReportTask.Status.FAILED:
        error = task.error_label or _("unknown error")
        messages.error(request, _("The report “%(report)s” failed: %(error)s. You may ask for it again.") % {"report": name, "error": error})
    elif task.status == ReportTask.Status.RUNNING:
        messages.success(
            request,
            _("The report “%(report)s” is being produced; it is listed under Pending tasks, and you may leave this page meanwhile.") % {"report": name},
        )
    else:
        messages.success(
            request, _("The report “%(report)s” is queued; it is listed under Pending tasks, and you may leave this page meanwhile.") % {"report": name}
        )


@login_required
@require_GET
def report_tasks_fragment(request, course_key):
    """htmx: Pending tasks and finished reports; stops the polling once nothing is pending."""
    course = course_for_team_member(request, course_key)
    context = _tasks_context(course, request.user)
    return render_polled(request, "reports/tasks.html#report-tasks", context, pending=context["polling"])


@login_required
@require_GET
def report_download(request, course_key, report_id):
    course = course_for_team_member(request, course_key)
    task = report_for_download(course=course, report_id=report_id)
    return FileResponse(task.file.open("rb"), as_attachment=True, filename=task.filename, content_type="text/csv; charset=utf-8")
