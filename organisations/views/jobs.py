"""The progress of an organisation job, polled by its page (the organisation's, or a course's import;
an import file's check answers with its preview once done)."""


from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404

from courses.selectors import course_for_team_member
from enrollment_site.lib.polling import render_polled

from ..models import OrgImport, OrgJob
from .common import admin_view
from .imports import import_results_url


def _check_status(request, job, *, course=None):
    """A file check's fragment: its progress, then the preview (or why the file was refused)."""
    checked = get_object_or_404(OrgImport.objects.select_related("check_job"), check_job=job, course=course)
    context = {"checked": checked, "import_course": course, "course": course}
    return render_polled(request, "organisations/_import_check.html", context, pending=job.is_pending)


@admin_view
def job_status(request, job_id):
    job = get_object_or_404(OrgJob, public_id=job_id)
    if job.kind == OrgJob.Kind.CHECK:
        return _check_status(request, job)
    return render_polled(request, "organisations/_job.html", {"job": job, "results_url": import_results_url(job)}, pending=job.is_pending)


@login_required
def course_job_status(request, course_key, job_id):
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(OrgJob, public_id=job_id, requester=request.user)
    if job.kind == OrgJob.Kind.CHECK:
        return _check_status(request, job, course=course)
    context = {"job": job, "course": course, "results_url": import_results_url(job, course=course)}
    return render_polled(request, "organisations/_job.html", context, pending=job.is_pending)
