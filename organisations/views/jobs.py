"""The progress of an organisation job, polled by its page (the organisation's, or a course's import)."""


from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404

from courses.selectors import course_for_team_member
from enrollment_site.lib.polling import render_polled

from ..models import OrgJob
from .common import admin_view
from .imports import import_results_url


@admin_view
def job_status(request, job_id):
    job = get_object_or_404(OrgJob, public_id=job_id)
    return render_polled(request, "organisations/_job.html", {"job": job, "results_url": import_results_url(job)}, pending=job.is_pending)


@login_required
def course_job_status(request, course_key, job_id):
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(OrgJob, public_id=job_id, requester=request.user)
    context = {"job": job, "course": course, "results_url": import_results_url(job, course=course)}
    return render_polled(request, "organisations/_job.html", context, pending=job.is_pending)
