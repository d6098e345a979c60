from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from courses.models import Course
from courses.selectors import course_for_team_member
from enrollment_site.lib.identifiers import split_identifiers
from enrollment_site.lib.safe_csv import write_csv

from .forms import REASON_MAX_LENGTH, BatchEnrollmentForm
from .models import Source
from .selectors import batch_jobs_for, batch_jobs_of
from .services import (
    RESULTS_CSV_HEADER,
    SelfEnrollmentRefused,
    batch_job_create,
    batch_job_run_inline,
    enrollment_self_enroll,
    enrollment_self_unenroll,
)


def membership_context(request, course, form=None, result=None):
    """The batch enrollment part of the Membership tab; ``result`` is the
    BatchJob whose results are shown (on its results page)."""
    return {
        "batch_form": form or BatchEnrollmentForm(initial={"auto_enroll": True, "email_students": True}),
        "result": result,
        "jobs": batch_jobs_for(course=course),
        "sync_limit": settings.ENROLLMENT_SYNC_LIMIT,
        "max_identifiers": settings.ENROLLMENT_MAX_IDENTIFIERS,
        "reason_max_length": REASON_MAX_LENGTH,
    }


@login_required
@require_POST
def batch_enrollment(request, course_key):
    from courses.views import instructor_membership_render

    course = course_for_team_member(request, course_key)
    form = BatchEnrollmentForm(request.POST, request.FILES)
    if not form.is_valid():
        return instructor_membership_render(request, course, form=form, status=400)
    cleaned = form.cleaned_data
    read = cleaned.get("file")
    tokens = split_identifiers(cleaned["identifiers"]) + (read.tokens if read else [])
    input_note = cleaned["input_note"]
    options = {
        "course": course,
        "action": cleaned["action"],
        "auto_enroll": cleaned["auto_enroll"],
        "email_students": cleaned["email_students"],
        "actor": request.user,
        "reason": cleaned["reason"],
        "source": Source.BATCH,
        "input_note": input_note,
    }
    if read or len(tokens) > settings.ENROLLMENT_SYNC_LIMIT:
        job = batch_job_create(identifiers=tokens, **options)
        if input_note:
            messages.info(request, input_note)
        messages.info(
            request,
            ngettext(
                "%(n)s identifier is being processed in the background; progress is shown below.",
                "%(n)s identifiers are being processed in the background; progress is shown below.",
                job.total,
            ) % {"n": f"{job.total:,}"},
        )
        return redirect("instructor_membership", course_key=course.key)
    job = batch_job_run_inline(identifiers=tokens, **options)
    # Post/Redirect/Get: a reload shows the results again instead of resubmitting.
    return redirect("batch_results", course_key=course.key, job_id=job.public_id)


@login_required
def batch_results(request, course_key, job_id):
    """A batch's results, on the Membership tab, for the course team only."""
    from courses.views import instructor_membership_render

    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    return instructor_membership_render(request, course, result=job)


@login_required
def batch_job_status(request, course_key, job_id):
    """htmx fragment with a job's progress; stops the polling once it is done."""
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    response = render(request, "enrollments/membership.html#job-row", {"job": job, "course": course})
    if not job.is_pending and request.htmx:
        stop = HttpResponseStopPolling(response.content)
        return stop
    return response


@login_required
def batch_job_results(request, course_key, job_id):
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    if job.results_file:
        return FileResponse(job.results_file.open("rb"), as_attachment=True, filename=job.results_file.name.rsplit("/", 1)[-1], content_type="text/csv")
    if not job.ran_in_request:
        raise Http404("The results are not ready yet.")
    rows = [RESULTS_CSV_HEADER, *([row[key] for key in RESULTS_CSV_HEADER] for row in job.results)]
    response = HttpResponse(write_csv(rows), content_type="text/csv; charset=utf-8")
    filename = f"{course.org}_{course.number}_batch_{job.action}_{job.created:%Y-%m-%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
