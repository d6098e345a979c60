"""The pages about people in courses: the catalog and the course page (with
self-enrollment), course creation, and the instructor dashboard's Course info and
Membership tabs (batch enrollment with its results, and the course team).

The catalog and course page are here rather than in courses because what they
show of a course is whether the visitor may enroll (``enrollments.rules``); course
creation because its creator becomes an enrolled team member. Dashboard views
fetch the course through ``course_for_team_member`` (404 for an unknown key, 403
outside the team); team changes through ``course_for_team_admin``."""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.rules import is_platform_admin
from courses.dashboard import dashboard_context
from courses.forms import CourseForm, TeamMemberAddForm
from courses.models import Course
from courses.rules import can_manage_course, can_manage_course_team
from courses.selectors import course_catalog, course_for_team_admin, course_for_team_member, course_team
from courses.services import course_role_revoke
from enrollment_site.lib.attempt_limits import attempt_count, client_address
from enrollment_site.lib.identifiers import default_column_choice, split_identifiers
from enrollment_site.lib.polling import render_polled
from enrollment_site.lib.safe_csv import write_csv
from enrollment_site.lib.uploads import UploadRefused

from .forms import BatchEnrollmentForm, ChartRangeForm, UploadColumnForm
from .models import BatchJob, Source
from .pending_previews import PendingPreview, pending_drop, pending_get, pending_save
from .selectors import (
    batch_jobs_for,
    batch_jobs_of,
    enrollment_counts,
    enrollments_over_time,
    self_enrollment_by_course,
    self_enrollment_for,
)
from .services import (
    RESULTS_CSV_HEADER,
    SelfEnrollmentRefused,
    TooManyIdentifiers,
    WrongEnrollmentKey,
    batch_job_create,
    batch_job_run_inline,
    enrollment_self_enroll,
    enrollment_self_unenroll,
)
from .services.batch_preview import PreviewStale, enrollment_batch_preview, preview_differences
from .services.jobs import batch_upload_drop, batch_upload_identifiers, batch_upload_queue
from .services.team import course_create_with_admin, course_team_member_add

User = get_user_model()
logger = logging.getLogger(__name__)


# --- catalog, course page, course creation --------------------------------------------


def catalog(request):
    courses = list(course_catalog())
    decisions = self_enrollment_by_course(user=request.user, courses=courses)
    rows = [(course, decisions[course.pk]) for course in courses]
    return render(request, "enrollments/catalog.html", {"rows": rows, "can_create": is_platform_admin(request.user)})


@login_required
def course_new(request):
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform administrators create courses.")
    form = CourseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        course = course_create_with_admin(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Course {course.key} created; you are its admin.")
        return redirect("course_detail", course_key=course.key)
    return render(request, "enrollments/course_form.html", {"form": form})


def course_detail(request, course_key):
    course = get_object_or_404(Course, key=course_key)
    context = {"course": course, "can_manage": can_manage_course(request.user, course)}
    context.update(self_enrollment_for(user=request.user, course=course))
    return render(request, "enrollments/course_detail.html", context)


# --- the dashboard's Course info tab ------------------------------------------------------


@login_required
def instructor_info(request, course_key):
    """Course info: the active enrollments in total and per mode, and their chart over the chosen period."""
    course = course_for_team_member(request, course_key)
    period = ChartRangeForm(request.GET)
    context = dashboard_context(course=course, tab="info")
    context["counts"] = enrollment_counts(course=course)
    context["timeline"] = enrollments_over_time(course=course, days=period.days())
    context["range"] = period.chosen()
    context["ranges"] = [(key, label) for key, (label, _) in ChartRangeForm.RANGES.items()]
    return render(request, "enrollments/instructor/info.html", context)


# --- the dashboard's Membership tab: batch enrollment and the course team -----------------


@login_required
def instructor_membership(request, course_key):
    course = course_for_team_member(request, course_key)
    return membership_render(request, course)


def membership_render(request, course, *, form=None, result=None, status=200, **preview):
    """The Membership tab: batch enrollment (with ``result``, the BatchJob whose
    results are shown on its results page, or ``preview``, a BatchPreview with
    its ``preview_token``) and the course team. ``course`` comes from
    ``course_for_team_member``."""
    context = dashboard_context(course=course, tab="membership")
    context.update(preview)
    context.update({
        "batch_form": form or BatchEnrollmentForm(initial={"auto_enroll": True, "email_students": True}),
        "result": result,
        "jobs": batch_jobs_for(course=course),
        "team": course_team(course=course),
        "team_form": TeamMemberAddForm(),
        "can_manage_team": can_manage_course_team(request.user, course),
    })
    return render(request, "enrollments/instructor/membership.html", context, status=status)


@login_required
@require_POST
def team_add(request, course_key):
    course = course_for_team_admin(request, course_key)
    form = TeamMemberAddForm(request.POST)
    if form.is_valid():
        user = form.cleaned_data["user"]
        try:
            course_team_member_add(course=course, user=user, role=form.cleaned_data["role"], actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{user.username} is now {form.cleaned_data['role']} of this course.")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("instructor_membership", course_key=course.key)


@login_required
@require_POST
def team_remove(request, course_key, user_id):
    course = course_for_team_admin(request, course_key)
    user = get_object_or_404(User, pk=user_id)
    try:
        course_role_revoke(course=course, user=user, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{user.username} was removed from the course team.")
    return redirect("instructor_membership", course_key=course.key)


@login_required
@require_POST
def batch_enrollment(request, course_key):
    course = course_for_team_member(request, course_key)
    form = BatchEnrollmentForm(request.POST, request.FILES)
    if not form.is_valid():
        return membership_render(request, course, form=form, status=400)
    cleaned = form.cleaned_data
    upload = cleaned.get("file")
    tokens = split_identifiers(cleaned["identifiers"])
    options = {
        "course": course,
        "action": cleaned["action"],
        "auto_enroll": cleaned["auto_enroll"],
        "email_students": cleaned["email_students"],
        "actor": request.user,
        "reason": cleaned["reason"],
        "source": Source.BATCH,
    }
    if upload or len(tokens) > settings.ENROLLMENT_SYNC_LIMIT:
        job = batch_job_create(identifiers=tokens, upload=upload, **options)
        # Without a broker the job has run by now (tasks run in-process): say what it found.
        job.refresh_from_db()
        if job.status == BatchJob.Status.FAILED:
            messages.error(request, job.error)
            return redirect("instructor_membership", course_key=course.key)
        if job.awaiting_column:
            return redirect("batch_upload_columns", course_key=course.key, job_id=job.public_id)
        if upload:
            messages.info(request, f"{job.upload_name} is being read in the background; its progress is shown below, then choose its column.")
            return redirect("instructor_membership", course_key=course.key)
        messages.info(
            request,
            ngettext(
                "%(n)s identifier is being processed in the background; progress is shown below.",
                "%(n)s identifiers are being processed in the background; progress is shown below.",
                job.total,
            ) % {"n": f"{job.total:,}"},
        )
        return redirect("instructor_membership", course_key=course.key)
    # A pasted list the request can handle is previewed first; Confirm applies it (batch_confirm).
    preview = enrollment_batch_preview(
        course=course, identifiers=tokens, action=cleaned["action"], auto_enroll=cleaned["auto_enroll"],
        email_students=cleaned["email_students"],
    )
    pending = PendingPreview(
        course_id=course.pk, action=cleaned["action"], auto_enroll=cleaned["auto_enroll"], email_students=cleaned["email_students"],
        reason=cleaned["reason"], shown=[], fingerprint="",
    )
    pending.show(preview)
    token = pending_save(request, pending)
    # Post/Redirect/Get: a reload shows the preview again instead of resubmitting.
    return redirect("batch_preview", course_key=course.key, token=token)


UPLOAD_ROWS_SHOWN = 10  # rows of a read file shown above its column choice


@login_required
def batch_upload_columns(request, course_key, job_id):
    """A read upload's first rows as parsed, and the choice of its column of
    identifiers and of whether its first row is a heading (by default as the
    file's headings suggest). Choosing previews the batch like a pasted list;
    above ENROLLMENT_SYNC_LIMIT identifiers it runs in the background. The
    request never reads the file: the job kept its rows."""
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    if not job.awaiting_column:
        raise Http404("This file is not waiting for a column choice.")
    rows = job.upload_rows or []
    columns = max((len(row) for row in rows), default=1)
    column, heading = default_column_choice(rows)
    form = UploadColumnForm(request.POST or None, columns=columns, initial={"column": column, "heading": heading})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                identifiers, note = batch_upload_identifiers(job, column=form.cleaned_data["column"], heading=form.cleaned_data["heading"])
            except (UploadRefused, TooManyIdentifiers) as exc:
                form.add_error("column", str(exc))
            else:
                messages.info(request, note)
                if len(identifiers) > settings.ENROLLMENT_SYNC_LIMIT:
                    batch_upload_queue(job, identifiers=identifiers, input_note=note)
                    messages.info(request, ngettext(
                        "%(n)s identifier is too many to preview: it is being processed in the background; progress is shown below.",
                        "%(n)s identifiers are too many to preview: they are being processed in the background; progress is shown below.",
                        len(identifiers),
                    ) % {"n": f"{len(identifiers):,}"})
                    return redirect("instructor_membership", course_key=course.key)
                preview = enrollment_batch_preview(
                    course=course, identifiers=identifiers, action=job.action, auto_enroll=job.auto_enroll, email_students=job.email_students,
                )
                pending = PendingPreview(
                    course_id=course.pk, action=job.action, auto_enroll=job.auto_enroll, email_students=job.email_students,
                    reason=job.reason, shown=[], fingerprint="", upload_job=str(job.public_id),
                )
                pending.show(preview)
                token = pending_save(request, pending)
                return redirect("batch_preview", course_key=course.key, token=token)
        status = 400
    context = dashboard_context(course=course, tab="membership")
    context.update({"job": job, "form": form, "rows": rows[:UPLOAD_ROWS_SHOWN], "row_count": len(rows), "columns": range(1, columns + 1)})
    return render(request, "enrollments/instructor/upload_columns.html", context, status=status)


PREVIEW_ROWS = 5  # rows of each outcome shown at first; "Show all" shows the rest


@login_required
def batch_preview(request, course_key, token):
    """What a pasted batch would do, with nothing written, and its Confirm.
    The preview is made again from the course as it is now, and what this
    page shows is what Confirm applies. ``?show=<outcome>`` lists every row
    of that outcome."""
    course = course_for_team_member(request, course_key)
    pending = pending_get(request, token, course_id=course.pk)
    if pending is None:
        raise Http404("This preview has expired or belongs to another session; submit the list again.")
    preview = enrollment_batch_preview(
        course=course, identifiers=pending.identifiers, action=pending.action, auto_enroll=pending.auto_enroll,
        email_students=pending.email_students,
    )
    changed = preview_differences([(i, o) for i, o in pending.shown], preview)
    if changed:
        messages.info(request, _changed_message(changed, "The course changed since this preview was last shown"))
    pending.show(preview)
    pending_save(request, pending, token)
    form = BatchEnrollmentForm(initial={
        "identifiers": "\n".join(pending.identifiers), "auto_enroll": pending.auto_enroll,
        "email_students": pending.email_students, "reason": pending.reason,
    })
    shown_all = request.GET.get("show", "")
    return membership_render(request, course, form=form, preview=preview, preview_token=token, preview_reason=pending.reason,
                             preview_rows=PREVIEW_ROWS, shown_all=shown_all)


@login_required
@require_POST
def batch_confirm(request, course_key, token):
    """Apply a previewed batch, if the course still gives what the preview
    showed; otherwise say what changed and show the new preview."""
    course = course_for_team_member(request, course_key)
    pending = pending_get(request, token, course_id=course.pk)
    if pending is None:
        raise Http404("This preview has expired or belongs to another session; submit the list again.")
    try:
        job = batch_job_run_inline(
            course=course, identifiers=pending.identifiers, action=pending.action, auto_enroll=pending.auto_enroll,
            email_students=pending.email_students, actor=request.user, reason=pending.reason, source=Source.BATCH,
            expected_fingerprint=pending.fingerprint,
        )
    except PreviewStale as stale:
        changed = preview_differences([(i, o) for i, o in pending.shown], stale.preview)
        message = _changed_message(changed, "Nothing was changed: the course changed since the preview")
        messages.warning(request, f"{message} Here is the new preview; confirm again to apply it.")
        # What the page will show now is the new preview, already reported here.
        pending.show(stale.preview)
        pending_save(request, pending, token)
        return redirect("batch_preview", course_key=course.key, token=token)
    pending_drop(request, token)
    if pending.upload_job:  # the file's rows have served: what was applied is in the job's results
        for read in batch_jobs_of(course=course).filter(public_id=pending.upload_job):
            batch_upload_drop(read)
    # Post/Redirect/Get: a reload shows the results again instead of resubmitting.
    return redirect("batch_results", course_key=course.key, job_id=job.public_id)


def _changed_message(changed: list[tuple[str, str, str]], opening: str) -> str:
    """``opening`` and, for whom, what changed ("cy: will enroll → already enrolled"), the first 10 named."""
    listed = "; ".join(f"{identifier}: {then} → {now}" for identifier, then, now in changed[:10])
    more = len(changed) - 10
    return ngettext(
        "%(opening)s for %(n)s person (%(listed)s%(more)s).",
        "%(opening)s for %(n)s people (%(listed)s%(more)s).",
        len(changed),
    ) % {"opening": opening, "n": f"{len(changed):,}", "listed": listed, "more": f" and {more:,} more" if more > 0 else ""}


@login_required
def batch_results(request, course_key, job_id):
    """A batch's results, on the Membership tab, for the course team only."""
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    return membership_render(request, course, result=job)


@login_required
def batch_job_status(request, course_key, job_id):
    """htmx fragment with a job's progress; stops the polling once it is done."""
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    return render_polled(request, "enrollments/membership.html#job-row", {"job": job, "course": course}, pending=job.is_pending)


@login_required
def batch_job_results(request, course_key, job_id):
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    if job.results_file:
        return FileResponse(job.results_file.open("rb"), as_attachment=True, filename=job.results_file.name.rsplit("/", 1)[-1], content_type="text/csv")
    if not job.ran_in_request:
        raise Http404("The results are not ready yet.")
    rows = [RESULTS_CSV_HEADER, *([row[key] for key in RESULTS_CSV_HEADER] for row in job.result_rows)]
    response = HttpResponse(write_csv(rows), content_type="text/csv; charset=utf-8")
    filename = f"{course.org}_{course.number}_batch_{job.action}_{job.created:%Y-%m-%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- self-enrollment, from the course page -------------------------------------------------


KEY_RATE_GROUP = "enrollments.key"


def _key_rates() -> list[tuple[str, str]]:
    return [
        ("user", getattr(settings, "ENROLLMENT_KEY_RATE_PER_USER", "10/10m")),
        ("ip", getattr(settings, "ENROLLMENT_KEY_RATE_PER_IP", "200/10m")),
    ]


def _too_many_keys(request, wait: int):
    minutes = max(1, -(-wait // 60))
    message = f"Too many wrong enrollment keys. Please wait {minutes} minute{'s' if minutes != 1 else ''} and try again."
    response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = str(wait)
    return response


@login_required
@require_POST
def self_enroll(request, course_key):
    """Enroll the learner at their own request. On a course with a key, wrong keys
    are limited per user and per address (ENROLLMENT_KEY_RATE_PER_USER / _PER_IP):
    each attempt is counted before it is tried, so concurrent guesses cannot pass
    the limit, and gives its count back unless the key was wrong."""
    course = get_object_or_404(Course, key=course_key)
    attempt = None
    if course.enrollment_key:
        attempt = attempt_count(request, group=KEY_RATE_GROUP, rates=_key_rates())
        if attempt.refused:
            logger.warning("self-enrollment refused by the key limit: user %s ip %s", request.user.pk, client_address(request))
            return _too_many_keys(request, attempt.wait)
    wrong_key = False
    try:
        enrollment_self_enroll(user=request.user, course=course, enrollment_key=request.POST.get("enrollment_key", ""))
    except WrongEnrollmentKey as exc:
        wrong_key = True
        logger.info("self-enrollment with a wrong key: course %s user %s ip %s", course.key, request.user.pk, client_address(request))
        messages.error(request, str(exc))
    except SelfEnrollmentRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"You are enrolled in {course.display_name}.")
    finally:
        # Only a wrong key counts: any other outcome (enrolled, full, closed, a
        # fault) reveals nothing about the key.
        if attempt is not None and not wrong_key:
            attempt.give_back()
    return redirect("course_detail", course_key=course.key)


@login_required
@require_POST
def self_unenroll(request, course_key):
    course = get_object_or_404(Course, key=course_key)
    enrollment_self_unenroll(user=request.user, course=course)
    messages.success(request, f"You are no longer enrolled in {course.display_name}.")
    return redirect("course_detail", course_key=course.key)
