"""The pages about people in courses: the catalog and the course page (with
self-enrollment), course creation, and the instructor dashboard's Course info and
Membership tabs (batch enrollment with its results, and the course team).

The catalog and course page are here rather than in courses because what they
show of a course is whether the visitor may enroll (``enrollments.rules``); course
creation because its creator becomes an enrolled team member. Dashboard views
fetch the course through ``course_for_team_member`` (404 for an unknown key, 403
outside the team); team changes through ``course_for_team_admin``."""

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
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
from enrollment_site.lib.gc_pause import without_gc
from enrollment_site.lib.identifiers import default_column_choice, split_identifiers
from enrollment_site.lib.polling import render_polled
from enrollment_site.lib.safe_csv import write_csv
from enrollment_site.lib.uploads import UploadRefused

from .forms import BatchEnrollmentForm, ChartRangeForm, UploadColumnForm
from .models import BatchJob, Source
from .periods import PeriodRequest
from .periods_asked import access_line, asked_from_json
from .selectors import (
    batch_jobs_for,
    batch_jobs_of,
    enrollment_counts,
    enrollments_over_time,
    membership_preview_for,
    membership_preview_renewing,
    period_counts,
    self_enrollment_by_course,
    self_enrollment_for,
    stored_preview,
)
from .services import (
    RESULTS_CSV_HEADER,
    SelfEnrollmentRefused,
    TooManyIdentifiers,
    WrongEnrollmentKey,
    batch_job_create,
    enrollment_self_enroll,
    enrollment_self_unenroll,
)
from .services.batch_preview import PreviewStale, changed_message, enrollment_batch_preview, preview_differences
from .services.jobs import batch_upload_identifiers
from .services.previews import PreviewAlreadyConfirmed, PreviewExpired, preview_confirm, preview_job_create, preview_record, preview_show
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
        raise PermissionDenied(_("Only platform administrators create courses."))
    form = CourseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        course = course_create_with_admin(actor=request.user, **form.cleaned_data)
        messages.success(request, _("Course %(key)s created; you are its admin.") % {"key": course.key})
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
    context["periods"] = period_counts(course=course)
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
            if form.cleaned_data["role"] == "admin":
                done = _("%(name)s is now admin of this course.")
            else:
                done = _("%(name)s is now staff of this course.")
            messages.success(request, done % {"name": user.username})
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
        messages.success(request, _("%(name)s was removed from the course team.") % {"name": user.username})
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
        "period": cleaned["period"],
    }
    if upload:
        job = batch_job_create(identifiers=tokens, upload=upload, source=Source.BATCH, **options)
        # Without a broker the job has run by now (tasks run in-process): say what it found.
        job.refresh_from_db()
        if job.status == BatchJob.Status.FAILED:
            messages.error(request, job.error)
            return redirect("instructor_membership", course_key=course.key)
        if job.awaiting_column:
            return redirect("batch_upload_columns", course_key=course.key, job_id=job.public_id)
        messages.info(request, _("%(name)s is being read in the background; its progress is shown below, then choose its column.") % {"name": job.upload_name})
        return redirect("instructor_membership", course_key=course.key)
    return _preview_start(request, tokens, **options)


def _preview_start(request, identifiers, *, upload=None, input_note="", **options):
    """Preview a list, nothing written but the preview itself, and redirect to
    it (Post/Redirect/Get: a reload shows the preview again instead of
    resubmitting). Up to ENROLLMENT_SYNC_LIMIT identifiers are previewed
    here; a larger list by a worker, whose progress the preview page shows."""
    course = options["course"]
    if len(identifiers) > settings.ENROLLMENT_SYNC_LIMIT:
        pending = preview_job_create(identifiers=identifiers, upload=upload, input_note=input_note, **options)
        return redirect("batch_preview", course_key=course.key, token=pending.public_id)
    preview = enrollment_batch_preview(
        course=course, identifiers=identifiers, action=options["action"], auto_enroll=options["auto_enroll"],
        email_students=options["email_students"], period=options.get("period"),
    )
    pending = preview_record(course=course, actor=request.user, preview=preview, reason=options["reason"], upload=upload, input_note=input_note)
    return redirect("batch_preview", course_key=course.key, token=pending.public_id)


UPLOAD_ROWS_SHOWN = 10  # rows of a read file shown above its column choice


@login_required
def batch_upload_columns(request, course_key, job_id):
    """A read upload's first rows as parsed, and the choice of its column of
    identifiers and of whether its first row is a heading (by default as the
    file's headings suggest). Choosing previews the batch like a pasted list
    (above ENROLLMENT_SYNC_LIMIT identifiers, by a worker). The request never
    reads the file: the job kept its rows."""
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
                return _preview_start(
                    request, identifiers, upload=job, input_note=note, course=course, action=job.action, auto_enroll=job.auto_enroll,
                    email_students=job.email_students, actor=request.user, reason=job.reason, period=asked_from_json(job.period),
                )
        status = 400
    context = dashboard_context(course=course, tab="membership")
    context.update({"job": job, "form": form, "rows": rows[:UPLOAD_ROWS_SHOWN], "row_count": len(rows), "columns": range(1, columns + 1)})
    return render(request, "enrollments/instructor/upload_columns.html", context, status=status)


PREVIEW_ROWS = 5  # rows of each outcome shown at first; "Show all" shows the rest (a large preview's in pages)
PREVIEW_PAGE = 100


def _pending_preview(request, course, token):
    """The preview ``token`` of ``course``, made by this user, or 404."""
    try:
        public_id = uuid.UUID(str(token))
    except ValueError:
        raise Http404("No such preview.") from None
    pending = membership_preview_for(course=course, user=request.user, public_id=public_id)
    if pending is None:
        raise Http404("This preview has expired or was made by someone else; submit the list again.")
    return pending


def _confirmed_message(pending) -> str:
    who = pending.confirmed_by.username if pending.confirmed_by else _("someone no longer here")
    when = timezone.localtime(pending.confirmed_at).strftime("%Y-%m-%d %H:%M:%S")
    return _("This preview was already confirmed by %(who)s at %(when)s; nothing more was changed. Its results are below.") % {"who": who, "when": when}


@login_required
def batch_preview(request, course_key, token):
    """What a batch would do, with nothing written, and its Confirm. A list
    previewed in the request is previewed again from the course as it is
    now, and what this page shows is what Confirm applies; a large one shows
    its worker's progress, then what the worker found. ``?show=<outcome>``
    lists every row of that outcome (a large preview's in pages)."""
    course = course_for_team_member(request, course_key)
    pending = _pending_preview(request, course, token)
    if pending.confirmed_at is not None:
        messages.info(request, _confirmed_message(pending))
        if pending.batch_job_id:
            return redirect("batch_results", course_key=course.key, job_id=pending.batch_job.public_id)
        return redirect("instructor_membership", course_key=course.key)
    shown_all = request.GET.get("show", "")
    asked = asked_from_json(pending.period)
    form = BatchEnrollmentForm(initial={
        "identifiers": "\n".join(identifier for identifier, _ in pending.shown) if pending.in_request else "",
        "auto_enroll": pending.auto_enroll, "email_students": pending.email_students, "reason": pending.reason,
        **_period_initial(asked),
    })
    context = {"preview_token": pending.public_id, "preview_reason": pending.reason, "preview_rows": PREVIEW_ROWS, "shown_all": shown_all,
               "preview_note": pending.input_note, "preview_access": access_line(asked, course)}
    if not pending.in_request:
        if pending.status != pending.Status.SUCCEEDED:
            return membership_render(request, course, form=form, preview_job=pending, **context)
        preview = stored_preview(pending, first=PREVIEW_ROWS, show=shown_all, page=request.GET.get("page"), per_page=PREVIEW_PAGE)
        return membership_render(request, course, form=form, preview=preview, **context)
    preview = enrollment_batch_preview(
        course=course, identifiers=[identifier for identifier, _ in pending.shown], action=pending.action,
        auto_enroll=pending.auto_enroll, email_students=pending.email_students, period=asked,
    )
    changed = preview_differences([(i, o) for i, o in pending.shown], preview)
    if changed:
        messages.info(request, changed_message(changed, _("The course changed since this preview was last shown")))
    preview_show(pending, preview)
    return membership_render(request, course, form=form, preview=preview, **context)


def _period_initial(asked: PeriodRequest) -> dict[str, str]:
    """The Access period fields as the form shows them again: dates as the date inputs take them."""
    return {
        "access_from": timezone.localtime(asked.access_from).date().isoformat() if asked.access_from else "",
        "access_until": timezone.localtime(asked.access_until).date().isoformat() if asked.access_until else "",
        "duration_days": str(asked.duration_days) if asked.duration_days else "",
    }


@login_required
def batch_preview_status(request, course_key, token):
    """A large preview's progress, polled by htmx until its worker is done;
    then the preview itself, and the announcement that it is ready."""
    course = course_for_team_member(request, course_key)
    pending = _pending_preview(request, course, token)
    context = {"preview_job": pending, "course": course, "preview_token": pending.public_id, "preview_reason": pending.reason,
               "preview_rows": PREVIEW_ROWS, "shown_all": "", "preview_note": pending.input_note,
               "preview_access": access_line(asked_from_json(pending.period), course)}
    if pending.status == pending.Status.SUCCEEDED and pending.confirmed_at is None:
        context["preview"] = stored_preview(pending, first=PREVIEW_ROWS)
    return render_polled(request, "enrollments/membership.html#preview-job", context, pending=pending.is_pending)


@login_required
@require_POST
@without_gc  # thousands of results built and decoded: enrollment_site/lib/gc_pause.py
def batch_confirm(request, course_key, token):
    """Apply a previewed batch once, if the course still gives what the
    preview showed; otherwise say what changed and show the new preview. A
    preview already confirmed (another tab, a double click) says by whom and
    when, and changes nothing more; one swept away says so."""
    course = course_for_team_member(request, course_key)
    try:
        public_id = uuid.UUID(str(token))
    except ValueError:
        raise Http404("No such preview.") from None
    found = membership_preview_for(course=course, user=None, public_id=public_id)
    if found is not None and found.requester_id != request.user.pk:
        raise Http404("This preview was made by someone else.")
    try:
        if found is None:
            raise PreviewExpired
        job = preview_confirm(course=course, public_id=public_id, actor=request.user)
    except PreviewExpired:
        messages.warning(request, ngettext(
            "This preview has expired (previews are kept %(n)s hour): nothing was changed. Upload the file or paste the list again.",
            "This preview has expired (previews are kept %(n)s hours): nothing was changed. Upload the file or paste the list again.",
            settings.PREVIEW_KEEP_HOURS,
        ) % {"n": settings.PREVIEW_KEEP_HOURS})
        return redirect("instructor_membership", course_key=course.key)
    except PreviewAlreadyConfirmed as confirmed:
        messages.warning(request, _confirmed_message(confirmed.preview))
        if confirmed.preview.batch_job_id:
            return redirect("batch_results", course_key=course.key, job_id=confirmed.preview.batch_job.public_id)
        return redirect("instructor_membership", course_key=course.key)
    except PreviewStale as stale:
        changed = preview_differences([(i, o) for i, o in found.shown], stale.preview)
        message = changed_message(changed, _("Nothing was changed: the course changed since the preview"))
        messages.warning(request, " ".join((message, _("Here is the new preview; confirm again to apply it."))))
        # What the page will show now is the new preview, already reported here.
        preview_show(found, stale.preview)
        return redirect("batch_preview", course_key=course.key, token=token)
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
        return redirect("batch_preview", course_key=course.key, token=token)
    if not job.ran_in_request:
        messages.info(request, ngettext(
            "Confirmed: %(n)s identifier is being processed in the background, exactly as previewed; progress is shown below.",
            "Confirmed: %(n)s identifiers are being processed in the background, exactly as previewed; progress is shown below.",
            job.total,
        ) % {"n": number_format(job.total, force_grouping=True)})
    # Post/Redirect/Get: a reload shows the results again instead of resubmitting.
    return redirect("batch_results", course_key=course.key, job_id=job.public_id)


@login_required
@without_gc  # thousands of results built and decoded: enrollment_site/lib/gc_pause.py
def batch_results(request, course_key, job_id):
    """A batch's results, on the Membership tab, for the course team only."""
    course = course_for_team_member(request, course_key)
    job = get_object_or_404(batch_jobs_of(course=course), public_id=job_id)
    # A confirmed preview's batch that found the course changed kept a new preview for its requester.
    renewed = job.status == BatchJob.Status.FAILED and membership_preview_renewing(job=job, user=request.user)
    return membership_render(
        request, course, result=job, renewed_preview=renewed or None, result_access=access_line(asked_from_json(job.period), course),
    )


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
    message = ngettext(
        "Too many wrong enrollment keys. Please wait %(n)s minute and try again.",
        "Too many wrong enrollment keys. Please wait %(n)s minutes and try again.",
        minutes,
    ) % {"n": minutes}
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
        messages.success(request, _("You are enrolled in %(course)s.") % {"course": course.display_name})
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
    messages.success(request, _("You are no longer enrolled in %(course)s.") % {"course": course.display_name})
    return redirect("course_detail", course_key=course.key)
