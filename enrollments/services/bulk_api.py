"""Bulk enrollment through the REST API: several courses in one call, or
queued as a job when the call is too large for the request."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.jobs import JobLost, JobRun, error_message, job_chunk, job_chunks, job_claim, job_fail, job_finish, job_heartbeat
from enrollment_site.lib.tasks import enqueue_on_commit

from ..models import BulkEnrollJob, BulkEnrollJobChunk, EnrollmentAudit, Outcome, Source, State
from ..periods import UNBOUNDED, Period, PeriodRequest
from ..periods_asked import asked_from_json, asked_json, period_api
from .batch import BatchResult, enrollment_batch_update
from .batch_decide import ACTIONS, ENROLL, IdentifierResult
from .jobs import BATCH_CHUNK

User = get_user_model()


def _bulk_answer(
    *, action: str, auto_enroll: bool, email_students: bool, per_course: dict[str, list[dict]], period: Period | None = None,
) -> dict:
    """The bulk enroll API's answer, in the shape Open edX clients parse; with
    ``period`` (the call named a period field) its ``access_from`` and ``access_until`` too."""
    answer = {
        "action": action,
        "courses": {key: {"action": action, "results": results, "auto_enroll": auto_enroll} for key, results in per_course.items()},
        "email_students": email_students,
        "auto_enroll": auto_enroll,
    }
    if period is not None:
        answer.update(period_api(period))
    return answer


def _period_given(asked: PeriodRequest, results: list) -> Period:
    """The period the answer reports: the one given to the enrollments (a
    duration counted from the first course's run), or none asked."""
    if asked.empty:
        return UNBOUNDED
    return results[0].period if results else UNBOUNDED


class UnknownCohorts(ValidationError):
    """Cohorts named in a bulk call that their courses do not have."""


def bulk_cohorts_check(*, courses: list[Course], cohorts: list[str], create_cohorts: bool) -> None:
    """Refuse (UnknownCohorts, naming each) the cohorts in ``cohorts`` (the n-th
    for the n-th course, "" for none) that their course does not have, unless
    ``create_cohorts``: a misspelled name must not quietly become a new cohort
    (Open edX answers "cohort … not found in course …" too). One query; called
    before anything is written, so a refused call changes no course."""
    wanted = [(course, name) for course, name in zip(courses, cohorts, strict=False) if name]
    if create_cohorts or not wanted:
        return
    from courses.models import Cohort

    names = {name for _, name in wanted}
    existing = set(Cohort.objects.filter(course__in=[c for c, _ in wanted], name__in=names).values_list("course_id", "name"))
    missing = [_("Cohort '%(name)s' not found in course %(course)s.") % {"name": name, "course": course.key}
               for course, name in wanted if (course.pk, name) not in existing]
    if missing:
        raise UnknownCohorts([*missing, _("Nothing was changed in any course. Check the spelling, or send create_cohorts: true to create it.")])


def _cohort_enrolled(*, result: BatchResult, cohort_name: str, actor: Actor, reason: str, source: str) -> dict[str, str | None]:
    """Put everyone the batch left enrolled in the cohort (when ``cohort_name``
    is not blank; the cohort is created if missing, which the caller has
    allowed, see ``bulk_cohorts_check``), audit it, and return, for every
    person the results name (by username), their cohort in the course before.

    Every move is audited (``_cohort_audit``), so that undo knows what to
    restore. Five queries at most, whatever the number of people."""
    from courses.models import CohortMembership
    from courses.services import cohort_assign

    course, results = result.course, result.results
    usernames = {r.username for r in results if r.username}
    before: dict[str, str | None] = dict.fromkeys(usernames)
    if usernames:
        memberships = CohortMembership.objects.filter(course=course, user__username__in=usernames)
        before.update(memberships.values_list("user__username", "cohort__name"))
    if not cohort_name:
        return before
    enrolled = {r.username for r in results if r.after.enrollment and r.username and r.outcome != Outcome.DUPLICATE}
    user_ids = dict(User.objects.filter(username__in=enrolled).values_list("username", "pk")) if enrolled else {}
    cohort_assign(course=course, cohort_name=cohort_name, users=list(user_ids.values()))
    _cohort_audit(result=result, cohort_name=cohort_name, before=before, user_ids=user_ids, actor=actor, reason=reason, source=source)
    return before


def _cohort_audit(
    *, result: BatchResult, cohort_name: str, before: dict[str, str | None], user_ids: dict[str, int], actor: Actor, reason: str, source: str,
) -> None:
    """One audit entry per person the cohort assignment moved (enrolled →
    enrolled, with the cohorts before and after), in the batch's operation.
    Audit entries are append-only, so a person the batch has just enrolled
    has two: the enrollment, then the move."""
    now, actor_id = timezone.now(), actor.pk if actor is not None and getattr(actor, "is_authenticated", False) else None
    moved = [
        {
            "created": now, "actor_id": actor_id, "course_id": result.course.pk, "user_id": user_ids[r.username],
            "identifier": r.identifier, "state_before": State.ENROLLED, "state_after": State.ENROLLED, "source": source,
            "reason": reason, "operation_id": result.operation_id, "cohort_before": before.get(r.username) or "", "cohort_after": cohort_name,
        }
        for r in result.results
        if r.username in user_ids and r.outcome != Outcome.DUPLICATE and before.get(r.username) != cohort_name
    ]
    if moved:
        bulk_insert(EnrollmentAudit, moved)


class ApiResults(list):
    """One course's results as the API answers them: a list of dicts whose
    ``before`` and ``after`` hold only bools and (with cohorts) a name or None,
    which the API's renderer relies on (``enrollments.api.renderers``)."""


def _api_results(*, results: list[IdentifierResult], cohort_name: str, cohorts_before: dict[str, str | None] | None) -> ApiResults:
    """The results as the API answers them; with ``cohorts_before`` (a call
    that named cohorts) each state carries the person's ``cohort`` too, as
    Open edX's bulk enroll answers: the name, or null for none."""
    answer = ApiResults(r.as_api_dict() for r in results)
    if cohorts_before is None:
        return answer
    for result, data in zip(results, answer, strict=True):
        before = cohorts_before.get(result.username) if result.username else None
        after = cohort_name if cohort_name and result.after.enrollment else before
        if result.outcome == Outcome.DUPLICATE:
            before = after  # the person's state once the identifier that named them first was handled
        data["before"]["cohort"], data["after"]["cohort"] = before, after
    return answer


@transaction.atomic
def enrollment_bulk_update(
    *,
    courses: list[Course],
    identifiers: list[str],
    action: str,
    auto_enroll: bool,
    email_students: bool,
    actor: Actor,
    cohorts: list[str] | None = None,
    create_cohorts: bool = False,
    dry_run: bool = False,
    reason: str = "",
    source: str = Source.API,
    period: PeriodRequest | None = None,
) -> dict:
    """Enroll or unenroll the identifiers in every course, all in one
    transaction, and return the bulk enroll API's answer.

    The caller has checked that ``actor`` may manage every course. ``cohorts``
    (enroll only) names, for the n-th course, the cohort that everyone enrolled
    there is put in ("" for none), and puts each person's cohort in their
    results' before and after; a cohort the course does not have is refused
    (UnknownCohorts, nothing written) unless ``create_cohorts``. With
    ``dry_run`` the whole call runs as it would (the same resolve, lock and
    decide, the same answer) and is then rolled back: no row stays written
    and the emails and tasks queued for after commit are dropped with it. The
    number of queries grows with the number of courses, never with the
    identifiers. ``period`` (enroll only; None when the call named no period
    field) goes to every course's batch (``enrollment_batch_update``), and the
    answer then says the period given (``access_from``, ``access_until``)."""
    cohorts = cohorts or []
    if cohorts and action != ENROLL:
        raise ValidationError(_("Cohorts can only be given with the enroll action."))
    bulk_cohorts_check(courses=courses, cohorts=cohorts, create_cohorts=create_cohorts)
    if dry_run:
        # A savepoint of its own, rolled back: Django drops the on-commit
        # callbacks (the outbox task) registered inside it.
        with transaction.atomic():
            answer = _bulk_update(
                courses=courses, identifiers=identifiers, action=action, auto_enroll=auto_enroll,
                email_students=email_students, actor=actor, cohorts=cohorts, reason=reason, source=source, period=period,
            )
            transaction.set_rollback(True)
        return answer
    return _bulk_update(
        courses=courses, identifiers=identifiers, action=action, auto_enroll=auto_enroll,
        email_students=email_students, actor=actor, cohorts=cohorts, reason=reason, source=source, period=period,
    )


def _bulk_update(
    *, courses: list[Course], identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
    actor: Actor, cohorts: list[str], reason: str, source: str, period: PeriodRequest | None = None,
) -> dict:
    done: dict[str, list[dict]] = {}
    batches: list[BatchResult] = []
    # Course-id order, whatever order the caller named them in: two calls
    # naming the same courses in opposite orders would otherwise each hold
    # the rows of its first course while waiting for the other's.
    for index, course in sorted(enumerate(courses), key=lambda pair: pair[1].pk):
        result = enrollment_batch_update(
            course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll,
            email_students=email_students, actor=actor, reason=reason, source=source, period=period,
        )
        batches.append(result)
        cohort_name = cohorts[index] if index < len(cohorts) else ""
        before = (
            _cohort_enrolled(result=result, cohort_name=cohort_name, actor=actor, reason=reason, source=source) if cohorts else None
        )
        done[course.key] = _api_results(results=result.results, cohort_name=cohort_name, cohorts_before=before)
    per_course = {course.key: done[course.key] for course in courses}  # the answer names them in the order asked
    given = _period_given(period, batches) if period is not None else None
    return _bulk_answer(action=action, auto_enroll=auto_enroll, email_students=email_students, per_course=per_course, period=given)


@transaction.atomic
def bulk_enroll_job_create(
    *,
    requester,
    courses: list[Course],
    identifiers: list[str],
    action: str,
    auto_enroll: bool,
    email_students: bool,
    cohorts: list[str] | None = None,
    create_cohorts: bool = False,
    reason: str = "",
    period: PeriodRequest | None = None,
):
    """Queue a bulk enroll API call too large for the request. The validated
    request is stored on the job row (so any worker can run it) and the task
    starts once this transaction commits. Unknown cohorts are refused here
    already (``bulk_cohorts_check``), and again when the job runs."""
    from ..tasks import run_bulk_enroll_job

    if action not in ACTIONS:
        raise ValidationError(_("Unknown action %(action)s; use 'enroll' or 'unenroll'.") % {"action": repr(action)})
    bulk_cohorts_check(courses=courses, cohorts=list(cohorts or []), create_cohorts=create_cohorts)
    payload = {
        "courses": [course.key for course in courses],
        "cohorts": list(cohorts or []),
        "create_cohorts": create_cohorts,
        "identifiers": list(identifiers),
        "action": action,
        "auto_enroll": auto_enroll,
        "email_students": email_students,
        "reason": reason,
    }
    if period is not None:  # kept only when asked, so that the answer keeps the seed's shape otherwise
        payload["period"] = asked_json(period)
    job = BulkEnrollJob.objects.create(requester=requester, payload=payload, total=len(identifiers) * len(courses))
    enqueue_on_commit(run_bulk_enroll_job, job.pk)
    return job


def bulk_enroll_job_run(*, job_id: int):
    """Run a queued bulk enroll job course by course, in chunks of BATCH_CHUNK
    identifiers; on success the job holds the API's JSON answer.

    Each chunk commits on its own, together with the job's position (which
    is also its progress) and the chunk's part of the answer (``job_chunk``),
    so that progress is visible while the job runs and a run that takes over
    the job of a dead worker resumes after the last committed chunk. Permissions
    are checked again here, as the requester may have lost a course role since
    the request. Claims the job with a conditional update, so a message
    delivered twice runs it once; returns None when someone else has it."""
    run = job_claim(BulkEnrollJob, job_id)
    if run is None:
        return None
    job = BulkEnrollJob.objects.select_related("requester").get(pk=job_id)
    try:
        with job_heartbeat(run):
            courses = _job_courses(job)
            answer = _job_answer(job, courses, run)
            if not job_finish(run, store=BulkEnrollJobChunk, done=job.total, result=answer):
                return None
    except JobLost:
        return None  # taken over: the job is its successor's
    except ValidationError as exc:
        # Expected refusals: the job fails with its reason, the worker carries on.
        job_fail(BulkEnrollJob, job.pk, error=error_message(exc), run=run)
        job.refresh_from_db()
        return job
    except Exception as exc:
        job_fail(BulkEnrollJob, job.pk, error=error_message(exc), run=run)
        raise
    job.refresh_from_db()
    return job


def _job_courses(job: BulkEnrollJob) -> list[Course]:
    """The job's courses in the order asked, if they all exist and the
    requester may still manage every one; ValidationError otherwise."""
    from courses.rules import can_manage_course

    keys = job.payload["courses"]
    by_key = Course.objects.in_bulk(keys, field_name="key")
    missing = [key for key in keys if key not in by_key]
    if missing:
        raise ValidationError(ngettext("Unknown course: %(keys)s.", "Unknown courses: %(keys)s.", len(missing)) % {"keys": ", ".join(missing)})
    refused = [key for key in keys if job.requester is None or not can_manage_course(job.requester, by_key[key])]
    if refused:
        raise ValidationError(_("The requester may no longer manage %(keys)s.") % {"keys": ", ".join(refused)})
    return [by_key[key] for key in keys]


def _job_answer(job: BulkEnrollJob, courses: list[Course], run: JobRun) -> dict:
    """Run the job over every course, from the run's position on (identifiers
    counted over the courses in order), and return the API's answer."""
    payload = job.payload
    identifiers = payload["identifiers"]
    cohorts = payload.get("cohorts") or []
    asked = asked_from_json(payload["period"]) if "period" in payload else None
    first: Period | None = None
    # Jobs queued before create_cohorts existed created missing cohorts.
    bulk_cohorts_check(courses=courses, cohorts=cohorts, create_cohorts=payload.get("create_cohorts", True))
    for index, course in enumerate(courses):
        cohort_name = cohorts[index] if index < len(cohorts) else ""
        offset = index * len(identifiers)
        # One operation per course, the same for every run of the job.
        operation_id = uuid.uuid5(job.public_id, course.key)
        for start in range(max(run.position - offset, 0), len(identifiers), BATCH_CHUNK):
            chunk = identifiers[start : start + BATCH_CHUNK]
            with job_chunk(run, store=BulkEnrollJobChunk) as record:
                result = enrollment_batch_update(
                    course=course, identifiers=chunk, action=payload["action"],
                    auto_enroll=payload["auto_enroll"], email_students=payload["email_students"], actor=job.requester,
                    reason=payload.get("reason", ""), source=Source.API, operation_id=operation_id, period=asked,
                )
                if first is None:
                    first = result.period
                before = _cohort_enrolled(
                    result=result, cohort_name=cohort_name, actor=job.requester, reason=payload.get("reason", ""), source=Source.API,
                ) if cohorts else None
                results = _api_results(results=result.results, cohort_name=cohort_name, cohorts_before=before)
                record.record(advance=len(chunk), data={"course": course.key, "results": results})
    per_course: dict[str, list[dict]] = {course.key: [] for course in courses}
    for data in job_chunks(BulkEnrollJobChunk, run):
        per_course[data["course"]].extend(data["results"])
    given = None
    if asked is not None:
        # A run that resumed after a dead worker's chunks gives the period its own chunks gave (a duration from a later now).
        given = UNBOUNDED if asked.empty else first or _job_period(job, asked)
    return _bulk_answer(
        action=payload["action"], auto_enroll=payload["auto_enroll"], email_students=payload["email_students"], per_course=per_course,
        period=given,
    )


def _job_period(job: BulkEnrollJob, asked: PeriodRequest) -> Period:
    """The period a job's chunks gave, when this run made none (all were made
    by the run it took over): what was asked, a duration counted from the job's start."""
    if asked.duration_days is None:
        return Period(asked.access_from, asked.access_until)
    start = asked.access_from or job.started or job.created
    return Period(asked.access_from, start + timedelta(days=asked.duration_days))
