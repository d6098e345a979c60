from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from courses.models import Course
from courses.selectors import course_for_team_member
from enrollment_site.lib.identifiers import split_identifiers

from .forms import BatchEnrollmentForm
from .models import BatchJob, Source
from .selectors import batch_jobs_for
from .services import (
    SelfEnrollmentRefused,
    batch_job_create,
    enrollment_batch_update,
    enrollment_self_enroll,
    enrollment_self_unenroll,
)


def membership_context(request, course, form=None, result=None):
    return {
        "batch_form": form or BatchEnrollmentForm(initial={"auto_enroll": True, "email_students": True}),
        "result": result,
        "jobs": batch_jobs_for(course=course),
        "sync_limit": settings.ENROLLMENT_SYNC_LIMIT,
        "max_identifiers": settings.ENROLLMENT_MAX_IDENTIFIERS,
    }


@login_required
@require_POST
def batch_enrollment(request, course_key):
    from courses.views import instructor_membership_render

    course = course_for_team_member(request, course_key)
    data = request.POST.copy()
    if data.get("action") not in ("enroll", "unenroll"):
        data["action"] = "enroll"
    form = BatchEnrollmentForm(data, request.FILES)
    if not form.is_valid():
        return instructor_membership_render(request, course, form=form, status=400)
    cleaned = form.cleaned_data
    file_tokens = cleaned.get("file") or []
    tokens = split_identifiers(cleaned["identifiers"]) + file_tokens
    options = {
        "course": course,
        "action": cleaned["action"],
        "auto_enroll": cleaned["auto_enroll"],
        "email_students": cleaned["email_students"],
        "actor": request.user,
        "reason": cleaned["reason"],
        "source": Source.BATCH,
    }
    if file_tokens or len(tokens) > settings.ENROLLMENT_SYNC_LIMIT:
        job = batch_job_create(identifiers=tokens, **options)
        messages.info(request, f"{job.total:,} identifiers are being processed in the background; progress is shown below.")
        return redirect("instructor_membership", course_key=course.key)
    result = enrollment_batch_update(identifiers=tokens, **options)
    return instructor_membership_render(request, course, form=BatchEnrollmentForm(initial=cleaned | {"identifiers": ""}), result=result)


@login_required
def batch_job_status(request, course_key, job_id):
    """htmx fragment with a job's progress; stops the polling once it is done."""
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(BatchJob, course=course, public_id=job_id)
    response = render(request, "enrollments/membership.html#job-row", {"job": job, "course": course})
    if not job.is_pending and request.htmx:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response


@login_required
def batch_job_results(request, course_key, job_id):
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(BatchJob, course=course, public_id=job_id)
    if not job.results_file:
        raise Http404("The results are not ready yet.")
    return FileResponse(job.results_file.open("rb"), as_attachment=True, filename=job.results_file.name.rsplit("/", 1)[-1], content_type="text/csv")


@login_required
@require_POST
def self_enroll(request, course_key):
    course = get_object_or_404(Course, key=course_key)
    try:
        enrollment_self_enroll(user=request.user, course=course, enrollment_key=request.POST.get("enrollment_key", ""))
    except SelfEnrollmentRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"You are enrolled in {course.display_name}.")
    return redirect("course_detail", course_key=course.key)


@login_required
@require_POST
def self_unenroll(request, course_key):
    course = get_object_or_404(Course, key=course_key)
    enrollment_self_unenroll(user=request.user, course=course)
    messages.success(request, f"You are no longer enrolled in {course.display_name}.")
    return redirect("course_detail", course_key=course.key)
