"""Operations that change enrollment state.

Every batch runs in a fixed number of SQL queries whatever its size: users,
enrollments and allowances are read with one query each, and every kind of
write is one bulk statement. Emails are written to the outbox in the same
transaction and delivered by a task after commit.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import ngettext

from courses.models import Course
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.identifiers import Identifier, Kind, parse_identifiers
from enrollment_site.lib.tasks import enqueue_on_commit

from .models import Allowance, BatchJob, Enrollment, EnrollmentAudit, Notification, Outcome, Source, State
from .notifications import MessageBuilder
from .rules import self_enrollment_decide

User = get_user_model()

ENROLL = "enroll"
UNENROLL = "unenroll"
ACTIONS = (ENROLL, UNENROLL)


@dataclass
class PersonState:
    """The four flags Open edX clients read, for one identifier in one course."""

    user: bool = False
    enrollment: bool = False
    allowed: bool = False
    auto_enroll: bool = False

    def as_dict(self) -> dict:
        return {"enrollment": self.enrollment, "allowed": self.allowed, "user": self.user, "auto_enroll": self.auto_enroll}


@dataclass
class IdentifierResult:
    identifier: str
    outcome: str
    before: PersonState
    after: PersonState
    username: str = ""
    email: str = ""
    note: str = ""  # e.g. which identifier named the same person first

    @property
    def invalid(self) -> bool:
        return self.outcome in Outcome.ERRORS

    @property
    def is_error(self) -> bool:
        return self.invalid

    def as_api_dict(self) -> dict:
        data = {"identifier": self.identifier, "before": self.before.as_dict(), "after": self.after.as_dict()}
        if self.invalid:
            data["invalidIdentifier"] = True
        return data

    def as_row(self) -> dict:
        """What the results page and its CSV show for this identifier."""
        return {
            "identifier": self.identifier, "outcome": self.outcome, "username": self.username, "email": self.email,
            "note": self.note, "error": self.is_error,
        }


@dataclass
class BatchResult:
    course: Course
    action: str
    auto_enroll: bool
    email_students: bool
    operation_id: uuid.UUID
    results: list[IdentifierResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.results))


class TooManyIdentifiers(ValidationError):
    pass


def check_identifier_count(count: int) -> None:
    cap = settings.ENROLLMENT_MAX_IDENTIFIERS
    if count > cap:
        raise TooManyIdentifiers(
            ngettext(
                "%(count)s identifier is more than the %(cap)s one batch may hold. Split the list and try again; nothing was changed.",
                "%(count)s identifiers are more than the %(cap)s one batch may hold. Split the list and try again; nothing was changed.",
                count,
            ) % {"count": f"{count:,}", "cap": f"{cap:,}"}
        )


def _state_of(*, enrollment: Enrollment | None, allowance: Allowance | None) -> str:
    if enrollment is not None:
        return State.ENROLLED if enrollment.is_active else State.UNENROLLED
    if allowance is not None:
        return State.ALLOWED_AUTO if allowance.auto_enroll else State.ALLOWED
    return State.NONE


def _flags(*, user, enrollment: Enrollment | None, allowance: Allowance | None) -> PersonState:
    return PersonState(
        user=user is not None,
        enrollment=bool(enrollment and enrollment.is_active),
        allowed=allowance is not None,
        auto_enroll=bool(allowance and allowance.auto_enroll),
    )


def _resolve_users(identifiers: list[Identifier]) -> tuple[dict[str, object], dict[str, object]]:
    """Active users by lower-cased username and by lower-cased email: two queries at most."""
    usernames = {i.key for i in identifiers if i.kind == Kind.USERNAME}
    emails = {i.key for i in identifiers if i.kind == Kind.EMAIL}
    by_username: dict[str, object] = {}
    by_email: dict[str, object] = {}
    if usernames:
        for user in (
            User.objects.annotate(username_key=Lower("username"))
            .filter(username_key__any_of=usernames, is_active=True)
            .only("id", "username", "email", "first_name", "last_name")
            .order_by("id")
        ):
            # Two accounts that differ only in case: the exact spelling wins below.
            by_username.setdefault(user.username_key, []).append(user)
    if emails:
        for user in (
            User.objects.annotate(email_key=Lower("email"))
            .filter(email_key__any_of=emails, is_active=True)
            .only("id", "username", "email", "first_name", "last_name")
        ):
            by_email[user.email_key] = user
    return by_username, by_email


def _pick_user(ident: Identifier, by_username, by_email):
    if ident.kind == Kind.EMAIL:
        return by_email.get(ident.key)
    if ident.kind == Kind.USERNAME:
        candidates = by_username.get(ident.key) or []
        for user in candidates:
            if user.username == ident.text:
                return user
        return candidates[0] if candidates else None
    return None


@transaction.atomic
def enrollment_batch_update(
    *,
    course: Course,
    identifiers: str | list[str],
    action: str,
    auto_enroll: bool,
    email_students: bool,
    actor,
    reason: str = "",
    source: str = Source.BATCH,
    operation_id: uuid.UUID | None = None,
    seen_users: dict[int, str] | None = None,
) -> BatchResult:
    """Enroll or unenroll a list of usernames and emails in one course.

    Returns one result per distinct identifier (in the order given) with its
    state before and after and its outcome. A person named twice (by username
    and by email, say) is handled once: later identifiers for them are "named
    twice", with a note naming the first. ``seen_users`` (user id → the
    identifier that named them) carries that across the chunks of one long
    batch; it is updated in place. Unknown emails become allowances
    on enroll (``auto_enroll`` decides whether activation enrolls them) and lose
    their allowance on unenroll; unknown usernames and invalid emails are
    reported, not fatal. Unenrolling keeps the enrollment row. Every change is
    audited; with ``email_students`` each changed person gets one email, sent
    from the outbox after commit. The number of queries does not depend on the
    number of identifiers.
    """
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}; use 'enroll' or 'unenroll'.")
    parsed = parse_identifiers(identifiers)
    check_identifier_count(len(parsed))
    operation_id = operation_id or uuid.uuid4()
    now = timezone.now()
    actor = actor if actor is not None and getattr(actor, "is_authenticated", False) else None

    by_username, by_email = _resolve_users(parsed)
    resolved = [(ident, _pick_user(ident, by_username, by_email)) for ident in parsed]

    user_ids = sorted({u.pk for _, u in resolved if u is not None})
    # Lock the existing rows in user-id order, so that two overlapping batches
    # queue behind each other instead of deadlocking or losing an update.
    enrollments = {
        e.user_id: e
        for e in Enrollment.objects.select_for_update()
        .filter(course=course, user_id__any_of=user_ids)
        .only("id", "user_id", "is_active", "mode")
        .order_by("user_id")
    } if user_ids else {}

    email_keys = {ident.key for ident, user in resolved if ident.kind == Kind.EMAIL}
    email_keys |= {u.email.lower() for _, u in resolved if u is not None}
    allowances = (
        {
            a.email_key: a
            for a in Allowance.objects.select_for_update()
            .filter(course=course, email_key__any_of=email_keys)
            .only("id", "email_key", "auto_enroll")
            .order_by("email_key")
        }
        if email_keys
        else {}
    )

    messages = MessageBuilder(course) if email_students else None
    result = BatchResult(course=course, action=action, auto_enroll=auto_enroll, email_students=email_students, operation_id=operation_id)
    to_upsert: list[dict] = []
    to_deactivate: list[int] = []
    allowances_to_upsert: list[dict] = []
    allowance_keys_to_delete: list[str] = []
    audits: list[dict] = []
    outbox: list[dict] = []
    seen_users = {} if seen_users is None else seen_users
    first_results: dict[int, IdentifierResult] = {}

    actor_id = actor.pk if actor is not None else None

    def audit(ident_text, user, before, after):
        audits.append({
            "created": now, "actor_id": actor_id, "course_id": course.pk, "user_id": user.pk if user is not None else None,
            "identifier": ident_text, "state_before": before, "state_after": after, "source": source, "reason": reason,
            "operation_id": operation_id,
        })

    for ident, user in resolved:
        if ident.kind == Kind.INVALID:
            result.results.append(IdentifierResult(ident.text, Outcome.INVALID_EMAIL, PersonState(), PersonState()))
            continue
        if user is None and ident.kind == Kind.USERNAME:
            result.results.append(IdentifierResult(ident.text, Outcome.NO_SUCH_USER, PersonState(), PersonState()))
            continue
        if user is not None and user.pk in seen_users:
            # The same person named twice (say by username and by email): handled
            # once, so that they count once in the summary and get one email.
            first = first_results.get(user.pk)
            if first is not None:
                state = first.after
            else:  # named in an earlier chunk, which has committed its change
                state = _flags(user=user, enrollment=enrollments.get(user.pk), allowance=allowances.get(user.email.lower()))
            note = f"same person as {seen_users[user.pk]}"
            result.results.append(IdentifierResult(ident.text, Outcome.DUPLICATE, state, state, user.username, user.email, note))
            continue

        email_key = user.email.lower() if user is not None else ident.key
        email_text = user.email if user is not None else ident.text
        enrollment = enrollments.get(user.pk) if user is not None else None
        allowance = allowances.get(email_key)
        before = _flags(user=user, enrollment=enrollment, allowance=allowance)
        state_before = _state_of(enrollment=enrollment, allowance=allowance)
        username = user.username if user is not None else ""

        if user is not None:
            seen_users[user.pk] = ident.text
        if action == ENROLL and user is not None:
            if enrollment is not None and enrollment.is_active:
                outcome = Outcome.ALREADY_ENROLLED
            else:
                outcome = Outcome.REACTIVATED if enrollment is not None else Outcome.ENROLLED
                # Reactivation keeps the mode the learner had; only is_active is updated on conflict.
                mode = enrollment.mode if enrollment is not None else course.default_mode
                to_upsert.append({"user_id": user.pk, "course_id": course.pk, "is_active": True, "mode": mode, "source": source, "created": now, "updated": now})
                audit(ident.text, user, state_before, State.ENROLLED)
                if email_students:
                    outbox.append(messages.enrolled(email=email_text, operation_id=operation_id, name=user.display_name, reason=reason))
            after = PersonState(user=True, enrollment=True, allowed=before.allowed, auto_enroll=before.auto_enroll)
        elif action == ENROLL:
            outcome = Outcome.ALLOWED_AUTO if auto_enroll else Outcome.ALLOWED
            if allowance is None or allowance.auto_enroll != auto_enroll:
                allowances_to_upsert.append({
                    "course_id": course.pk, "email": email_text, "email_key": email_key, "auto_enroll": auto_enroll,
                    "created_by_id": actor_id, "created": now, "used_at": None,
                })
                audit(ident.text, None, state_before, State.ALLOWED_AUTO if auto_enroll else State.ALLOWED)
                if email_students:
                    outbox.append(messages.allowed(email=email_text, auto_enroll=auto_enroll, operation_id=operation_id, reason=reason))
            after = PersonState(user=False, enrollment=False, allowed=True, auto_enroll=auto_enroll)
        else:  # unenroll
            if enrollment is not None and enrollment.is_active:
                outcome = Outcome.UNENROLLED
                to_deactivate.append(enrollment.pk)
                enrollment.is_active = False
            elif allowance is not None:
                outcome = Outcome.ALLOWANCE_REMOVED
            else:
                outcome = Outcome.NOT_ENROLLED
            if allowance is not None:
                allowance_keys_to_delete.append(email_key)
                allowances.pop(email_key)
            if outcome != Outcome.NOT_ENROLLED:
                state_after = State.UNENROLLED if enrollment is not None else State.NONE
                audit(ident.text, user, state_before, state_after)
                if email_students:
                    build = messages.unenrolled if outcome == Outcome.UNENROLLED else messages.allowance_removed
                    greet_as = user.display_name if user is not None else ""
                    outbox.append(build(email=email_text, operation_id=operation_id, name=greet_as, reason=reason))
            after = PersonState(user=user is not None, enrollment=False, allowed=False, auto_enroll=False)

        result.results.append(IdentifierResult(ident.text, outcome, before, after, username, email_text))
        if user is not None:
            first_results[user.pk] = result.results[-1]

    # Upserts: a row another batch inserted meanwhile is reactivated, never duplicated.
    bulk_insert(Enrollment, to_upsert, unique_fields=["user", "course"], update_fields=["is_active", "updated"])
    if to_deactivate:
        Enrollment.objects.filter(pk__any_of=to_deactivate).update(is_active=False, updated=now)
    bulk_insert(Allowance, allowances_to_upsert, unique_fields=["course", "email_key"], update_fields=["auto_enroll", "created_by"])
    if allowance_keys_to_delete:
        Allowance.objects.filter(course=course, email_key__any_of=allowance_keys_to_delete).delete()
    bulk_insert(EnrollmentAudit, audits)
    if outbox:
        bulk_insert(Notification, outbox, ignore_conflicts=True)
        from .tasks import send_notifications

        enqueue_on_commit(send_notifications, str(operation_id))
    return result


def identifier_for(user) -> str:
    """What to hand ``enrollment_batch_update`` for a known user: the username,
    unless it looks like an email (then the address, unique per account)."""
    return user.email if "@" in user.username else user.username


@transaction.atomic
def allowance_consume_for(*, user) -> list[Enrollment]:
    """Turn every auto-enroll allowance for the user's email (any case) into an
    active enrollment, audited. Called when an account's email is confirmed."""
    email_key = (user.email or "").lower()
    if not email_key or not user.is_active:
        return []
    allowances = list(
        Allowance.objects.select_for_update()
        .filter(email_key=email_key, auto_enroll=True, used_at__isnull=True)
        .select_related("course")
        .order_by("course_id")
    )
    if not allowances:
        return []
    now = timezone.now()
    existing = {e.course_id: e for e in Enrollment.objects.select_for_update().filter(user=user, course_id__in=[a.course_id for a in allowances])}
    rows, audits = [], []
    for allowance in allowances:
        enrollment = existing.get(allowance.course_id)
        if enrollment is not None and enrollment.is_active:
            continue
        mode = enrollment.mode if enrollment is not None else allowance.course.default_mode
        rows.append(Enrollment(user=user, course=allowance.course, is_active=True, mode=mode, source=Source.ACTIVATION, created=now))
        audits.append(
            EnrollmentAudit(
                created=now, actor=allowance.created_by, course=allowance.course, user=user, identifier=user.email,
                state_before=State.ALLOWED_AUTO, state_after=State.ENROLLED, source=Source.ACTIVATION,
                reason="Auto-enroll allowance used on account activation",
            )
        )
    if rows:
        Enrollment.objects.bulk_create(rows, update_conflicts=True, unique_fields=["user", "course"], update_fields=["is_active", "updated"])
        EnrollmentAudit.objects.bulk_create(audits)
    Allowance.objects.filter(pk__in=[a.pk for a in allowances]).update(used_at=now)
    return rows


class SelfEnrollmentRefused(Exception):
    """The learner may not enroll themself; the message says why, politely."""


@transaction.atomic
def enrollment_self_enroll(*, user, course: Course, enrollment_key: str = "") -> Enrollment:
    """Enroll a learner at their own request, within the course's rules.

    ``self_enrollment_decide`` decides, as it does for the course page; a refusal
    raises SelfEnrollmentRefused with its reason and changes nothing."""
    # Lock the course row: two learners taking the last seat at once must not
    # both get in past the cap.
    course = Course.objects.select_for_update().get(pk=course.pk)
    enrollment = Enrollment.objects.select_for_update().filter(user=user, course=course).first()
    if enrollment is not None and enrollment.is_active:
        return enrollment
    allowance = Allowance.objects.filter(course=course, email_key=user.email.lower()).first()
    now = timezone.now()
    active_count = None
    if course.max_enrollments is not None:
        active_count = Enrollment.objects.filter(course=course, is_active=True).count()
    decision = self_enrollment_decide(
        course=course, is_enrolled=False, was_enrolled=enrollment is not None, invited=allowance is not None,
        active_count=active_count, now=now, enrollment_key=enrollment_key,
    )
    if not decision.may_enroll:
        raise SelfEnrollmentRefused(decision.message)
    state_before = State.UNENROLLED if enrollment is not None else _state_of(enrollment=None, allowance=allowance)
    if enrollment is not None:
        enrollment.is_active = True
        enrollment.save(update_fields=["is_active", "updated"])
    else:
        enrollment = Enrollment.objects.create(user=user, course=course, mode=course.default_mode, source=Source.SELF, created=now)
    if allowance is not None and allowance.used_at is None:
        Allowance.objects.filter(pk=allowance.pk).update(used_at=now)
    EnrollmentAudit.objects.create(
        created=now, actor=user, course=course, user=user, identifier=user.username,
        state_before=state_before, state_after=State.ENROLLED, source=Source.SELF,
    )
    return enrollment


@transaction.atomic
def enrollment_self_unenroll(*, user, course: Course) -> None:
    """Unenroll a learner at their own request; the row and its data are kept."""
    enrollment = Enrollment.objects.select_for_update().filter(user=user, course=course, is_active=True).first()
    if enrollment is None:
        return
    enrollment.is_active = False
    enrollment.save(update_fields=["is_active", "updated"])
    EnrollmentAudit.objects.create(
        actor=user, course=course, user=user, identifier=user.username,
        state_before=State.ENROLLED, state_after=State.UNENROLLED, source=Source.SELF,
    )


# --- background batches ------------------------------------------------------


@transaction.atomic
def batch_job_create(*, course: Course, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                     actor, reason: str = "", source: str = Source.BATCH, input_note: str = "") -> BatchJob:
    """Queue a batch too large for the request. The distinct identifiers are
    stored on the job row, so that any worker can run it."""
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}; use 'enroll' or 'unenroll'.")
    # Distinct over the whole batch, so that a chunk of the run does not report
    # again an identifier an earlier chunk handled, and the total is what is run.
    distinct = [ident.text for ident in parse_identifiers(identifiers)]
    check_identifier_count(len(distinct))
    job = BatchJob.objects.create(
        course=course, requester=actor, action=action, auto_enroll=auto_enroll, email_students=email_students,
        reason=reason, source=source, identifiers="\n".join(distinct), total=len(distinct), input_note=input_note[:500],
    )
    from .tasks import run_batch_job

    enqueue_on_commit(run_batch_job, job.pk)
    return job


@transaction.atomic
def batch_job_run_inline(*, course: Course, identifiers: list[str], action: str, auto_enroll: bool, email_students: bool,
                         actor, reason: str = "", source: str = Source.BATCH, input_note: str = "") -> BatchJob:
    """Run a batch small enough for the request and record it as a finished
    job holding its summary and one results row per identifier, so that the
    page can redirect to the results (Post/Redirect/Get) and show them again.

    Enrollment changes and the record commit together: there are no results
    without the changes, nor changes without their results."""
    result = enrollment_batch_update(
        course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll, email_students=email_students,
        actor=actor, reason=reason, source=source,
    )
    now = timezone.now()
    count = len(result.results)
    return BatchJob.objects.create(
        course=course, requester=actor if getattr(actor, "is_authenticated", False) else None, action=action,
        auto_enroll=auto_enroll, email_students=email_students, reason=reason, source=source, input_note=input_note[:500],
        ran_in_request=True, status=BatchJob.Status.SUCCEEDED, total=count, done=count, created=now, started=now, finished=now, heartbeat_at=now,
        summary=result.summary, results=[r.as_row() for r in result.results],
    )


RESULTS_CSV_HEADER = ["identifier", "outcome", "username", "email", "note"]

BATCH_CHUNK = 5_000


def batch_job_run(*, job_id: int) -> BatchJob | None:
    """Run a queued batch job in chunks, recording progress on its row and
    writing the per-identifier results as CSV through the storage API.

    Claims the job with a conditional update, so a message delivered twice
    runs it once; returns None when someone else has it."""
    import csv
    import io

    from django.core.files.base import ContentFile

    from enrollment_site.lib.safe_csv import safe_row

    claimed = BatchJob.objects.filter(pk=job_id, status=BatchJob.Status.QUEUED).update(
        status=BatchJob.Status.RUNNING, started=timezone.now(), heartbeat_at=timezone.now()
    )
    if not claimed:
        return None
    job = BatchJob.objects.select_related("course", "requester").get(pk=job_id)
    try:
        tokens = [line for line in job.identifiers.splitlines() if line.strip()]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["identifier", "outcome", "username", "email", "enrolled before", "enrolled after", "allowed after", "auto_enroll after", "note"])
        summary: Counter = Counter()
        operation_id = uuid.uuid4()
        seen_users: dict[int, str] = {}
        for start in range(0, len(tokens), BATCH_CHUNK):
            chunk = tokens[start : start + BATCH_CHUNK]
            result = enrollment_batch_update(
                course=job.course, identifiers=chunk, action=job.action, auto_enroll=job.auto_enroll,
                email_students=job.email_students, actor=job.requester, reason=job.reason, source=job.source,
                operation_id=operation_id, seen_users=seen_users,
            )
            for r in result.results:
                writer.writerow(safe_row([
                    r.identifier, r.outcome, r.username, r.email, r.before.enrollment, r.after.enrollment, r.after.allowed, r.after.auto_enroll, r.note,
                ]))
            summary.update(result.summary)
            BatchJob.objects.filter(pk=job.pk).update(done=min(start + len(chunk), job.total), heartbeat_at=timezone.now(), summary=dict(summary))
        job.refresh_from_db()
        name = f"{job.course.org}_{job.course.number}_batch_{job.action}_{timezone.now():%Y-%m-%d-%H%M}.csv"
        job.results_file.save(name, ContentFile(buffer.getvalue().encode("utf-8")), save=False)
        BatchJob.objects.filter(pk=job.pk).update(
            status=BatchJob.Status.SUCCEEDED, finished=timezone.now(), done=job.total, summary=dict(summary), results_file=job.results_file.name
        )
    except Exception as exc:
        BatchJob.objects.filter(pk=job.pk).update(status=BatchJob.Status.FAILED, finished=timezone.now(), error=str(exc)[:2000])
        raise
    job.refresh_from_db()
    return job


STALE_AFTER_MINUTES = 35


def batch_jobs_fail_stale() -> int:
    """Mark jobs whose worker died (no heartbeat past the hard time limit) as failed,
    so that nothing shows as pending forever."""
    cutoff = timezone.now() - timezone.timedelta(minutes=STALE_AFTER_MINUTES)
    running = BatchJob.objects.filter(status=BatchJob.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=BatchJob.Status.FAILED, finished=timezone.now(), error="The worker was lost or the job timed out."
    )
    queued = BatchJob.objects.filter(status=BatchJob.Status.QUEUED, created__lt=timezone.now() - timezone.timedelta(hours=6)).update(
        status=BatchJob.Status.FAILED, finished=timezone.now(), error="The job never started: is a worker running?"
    )
    return running + queued


# --- outbox delivery -----------------------------------------------------------

NOTIFICATION_CHUNK = 200
SENDING_STALE_MINUTES = 10
PENDING_SWEEP_AFTER_SECONDS = 60


def _claim_notifications(*, operation_id, limit: int) -> list[Notification]:
    with transaction.atomic():
        # SKIP LOCKED lets several workers drain the outbox side by side
        # without two of them claiming the same message.
        qs = Notification.objects.filter(status=Notification.Status.PENDING)
        if operation_id is not None:
            qs = qs.filter(operation_id=operation_id)
        ids = list(qs.order_by("id").select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        if not ids:
            return []
        Notification.objects.filter(pk__in=ids, status=Notification.Status.PENDING).update(
            status=Notification.Status.SENDING, claimed_at=timezone.now()
        )
        return list(Notification.objects.filter(pk__in=ids).select_related("course").order_by("id"))


def notifications_send(*, operation_id: str | uuid.UUID | None = None) -> int:
    """Deliver pending outbox rows (of one operation, or all), in chunks over
    one SMTP connection per chunk. Each row is marked sent once its message
    went out, so a retry never sends a message twice; on an error the unsent
    rest of the chunk goes back to pending and the error propagates (the task
    retries). Returns how many messages were sent."""
    from email.utils import make_msgid

    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.core.mail.utils import DNS_NAME

    sent_total = 0
    while True:
        batch = _claim_notifications(operation_id=operation_id, limit=NOTIFICATION_CHUNK)
        if not batch:
            return sent_total
        sent: list[tuple[int, str]] = []
        builders: dict[int | None, MessageBuilder] = {}
        try:
            with get_connection() as connection:
                for note in batch:
                    if note.course is None and not note.body:
                        # Its course was deleted before delivery: nothing left to announce.
                        Notification.objects.filter(pk=note.pk).update(status=Notification.Status.FAILED, error="course deleted")
                        continue
                    if note.course_id not in builders:
                        builders[note.course_id] = MessageBuilder(note.course)
                    message_id = make_msgid(domain=DNS_NAME)
                    rendered = builders[note.course_id].render(note)
                    message = EmailMultiAlternatives(
                        subject=note.subject, body=rendered.text, from_email=settings.DEFAULT_FROM_EMAIL, to=[note.recipient],
                        connection=connection, headers={"Message-ID": message_id},
                    )
                    if rendered.html is not None:
                        message.attach_alternative(rendered.html, "text/html")
                    connection.send_messages([message])
                    sent.append((note.pk, message_id))
        except Exception as exc:
            _record_sent(sent)
            unsent = [n.pk for n in batch if n.pk not in {pk for pk, _ in sent}]
            Notification.objects.filter(pk__in=unsent).update(
                status=Notification.Status.PENDING, error=str(exc)[:1000], claimed_at=None
            )
            raise
        _record_sent(sent)
        sent_total += len(sent)


def _record_sent(sent: list[tuple[int, str]]) -> None:
    if not sent:
        return
    now = timezone.now()
    rows = [Notification(pk=pk, message_id=mid, status=Notification.Status.SENT, sent_at=now) for pk, mid in sent]
    Notification.objects.bulk_update(rows, ["message_id", "status", "sent_at"])


def notifications_requeue_stale() -> int:
    """Give rows stuck in 'sending' (a worker died mid-chunk) back to the sender.
    A message that did go out before the crash may then be sent a second time:
    the one duplicate this design admits, preferred to losing it."""
    cutoff = timezone.now() - timezone.timedelta(minutes=SENDING_STALE_MINUTES)
    return Notification.objects.filter(status=Notification.Status.SENDING, claimed_at__lt=cutoff).update(
        status=Notification.Status.PENDING, claimed_at=None
    )


# --- bulk enroll through the API -------------------------------------------------


def _bulk_answer(*, action: str, auto_enroll: bool, email_students: bool, per_course: dict[str, list[dict]]) -> dict:
    """The bulk enroll API's answer, in the shape Open edX clients parse."""
    return {
        "action": action,
        "courses": {key: {"action": action, "results": results, "auto_enroll": auto_enroll} for key, results in per_course.items()},
        "email_students": email_students,
        "auto_enroll": auto_enroll,
    }


def _cohort_enrolled(*, course: Course, cohort_name: str, results: list[IdentifierResult]) -> None:
    """Put everyone the batch left enrolled in the cohort: one query for the users, one upsert."""
    from courses.services import cohort_assign

    usernames = {r.username for r in results if r.after.enrollment and r.username}
    user_ids = User.objects.filter(username__in=usernames).values_list("pk", flat=True) if usernames else []
    cohort_assign(course=course, cohort_name=cohort_name, users=user_ids)


@transaction.atomic
def enrollment_bulk_update(
    *,
    courses: list[Course],
    identifiers: list[str],
    action: str,
    auto_enroll: bool,
    email_students: bool,
    actor,
    cohorts: list[str] | None = None,
    reason: str = "",
    source: str = Source.API,
) -> dict:
    """Enroll or unenroll the identifiers in every course, all in one
    transaction, and return the bulk enroll API's answer.

    The caller has checked that ``actor`` may manage every course. ``cohorts``
    (enroll only) names, for the n-th course, the cohort that everyone enrolled
    there is put in ("" for none); a missing cohort is created. The number of
    queries grows with the number of courses, never with the identifiers."""
    cohorts = cohorts or []
    if cohorts and action != ENROLL:
        raise ValidationError("Cohorts can only be given with the enroll action.")
    per_course: dict[str, list[dict]] = {}
    for index, course in enumerate(courses):
        result = enrollment_batch_update(
            course=course, identifiers=identifiers, action=action, auto_enroll=auto_enroll,
            email_students=email_students, actor=actor, reason=reason, source=source,
        )
        cohort_name = cohorts[index] if index < len(cohorts) else ""
        if cohort_name:
            _cohort_enrolled(course=course, cohort_name=cohort_name, results=result.results)
        per_course[course.key] = [r.as_api_dict() for r in result.results]
    return _bulk_answer(action=action, auto_enroll=auto_enroll, email_students=email_students, per_course=per_course)


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
    reason: str = "",
):
    """Queue a bulk enroll API call too large for the request. The validated
    request is stored on the job row (so any worker can run it) and the task
    starts once this transaction commits."""
    from .models import BulkEnrollJob
    from .tasks import run_bulk_enroll_job

    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}; use 'enroll' or 'unenroll'.")
    payload = {
        "courses": [course.key for course in courses],
        "cohorts": list(cohorts or []),
        "identifiers": list(identifiers),
        "action": action,
        "auto_enroll": auto_enroll,
        "email_students": email_students,
        "reason": reason,
    }
    job = BulkEnrollJob.objects.create(requester=requester, payload=payload, total=len(identifiers) * len(courses))
    enqueue_on_commit(run_bulk_enroll_job, job.pk)
    return job


def bulk_enroll_job_run(*, job_id: int):
    """Run a queued bulk enroll job course by course, in chunks of BATCH_CHUNK
    identifiers, recording progress (and a heartbeat) on the job row after
    each chunk; on success the job holds the API's JSON answer.

    Each chunk commits on its own so that progress is visible while the job
    runs; enrolling and unenrolling are idempotent, so a failed job can simply
    be submitted again. Permissions are checked again here, as the requester
    may have lost a course role since the request. Claims the job with a
    conditional update, so a message delivered twice runs it once; returns
    None when someone else has it."""
    from courses.rules import can_manage_course

    from .models import BulkEnrollJob

    now = timezone.now()
    claimed = BulkEnrollJob.objects.filter(pk=job_id, status=BulkEnrollJob.Status.QUEUED).update(
        status=BulkEnrollJob.Status.RUNNING, started=now, heartbeat_at=now
    )
    if not claimed:
        return None
    job = BulkEnrollJob.objects.select_related("requester").get(pk=job_id)
    payload = job.payload
    try:
        keys = payload["courses"]
        by_key = Course.objects.in_bulk(keys, field_name="key")
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise ValidationError(ngettext("Unknown course: %(keys)s.", "Unknown courses: %(keys)s.", len(missing)) % {"keys": ", ".join(missing)})
        refused = [key for key in keys if job.requester is None or not can_manage_course(job.requester, by_key[key])]
        if refused:
            raise ValidationError(f"The requester may no longer manage {', '.join(refused)}.")
        identifiers = payload["identifiers"]
        cohorts = payload.get("cohorts") or []
        per_course: dict[str, list[dict]] = {}
        done = 0
        for index, key in enumerate(keys):
            course = by_key[key]
            cohort_name = cohorts[index] if index < len(cohorts) else ""
            operation_id = uuid.uuid4()
            results: list[dict] = []
            for start in range(0, len(identifiers), BATCH_CHUNK):
                chunk = identifiers[start : start + BATCH_CHUNK]
                with transaction.atomic():
                    result = enrollment_batch_update(
                        course=course, identifiers=chunk, action=payload["action"], auto_enroll=payload["auto_enroll"],
                        email_students=payload["email_students"], actor=job.requester, reason=payload.get("reason", ""),
                        source=Source.API, operation_id=operation_id,
                    )
                    if cohort_name and payload["action"] == ENROLL:
                        _cohort_enrolled(course=course, cohort_name=cohort_name, results=result.results)
                results.extend(r.as_api_dict() for r in result.results)
                done += len(chunk)
                BulkEnrollJob.objects.filter(pk=job.pk).update(done=min(done, job.total), heartbeat_at=timezone.now())
            per_course[key] = results
        answer = _bulk_answer(
            action=payload["action"], auto_enroll=payload["auto_enroll"], email_students=payload["email_students"], per_course=per_course
        )
    except ValidationError as exc:
        # Expected refusals: the job fails with its reason, the worker carries on.
        BulkEnrollJob.objects.filter(pk=job.pk).update(
            status=BulkEnrollJob.Status.FAILED, finished=timezone.now(), error=" ".join(exc.messages)[:2000]
        )
        job.refresh_from_db()
        return job
    except Exception as exc:
        BulkEnrollJob.objects.filter(pk=job.pk).update(status=BulkEnrollJob.Status.FAILED, finished=timezone.now(), error=str(exc)[:2000])
        raise
    BulkEnrollJob.objects.filter(pk=job.pk).update(
        status=BulkEnrollJob.Status.SUCCEEDED, finished=timezone.now(), done=job.total, result=answer, heartbeat_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def bulk_enroll_jobs_fail_stale() -> int:
    """Fail bulk enroll jobs whose worker died (no heartbeat past the hard
    time limit) or that never started, so that none shows as pending forever."""
    from .models import BulkEnrollJob

    now = timezone.now()
    running = BulkEnrollJob.objects.filter(
        status=BulkEnrollJob.Status.RUNNING, heartbeat_at__lt=now - timezone.timedelta(minutes=STALE_AFTER_MINUTES)
    ).update(status=BulkEnrollJob.Status.FAILED, finished=now, error="The worker was lost or the job timed out.")
    queued = BulkEnrollJob.objects.filter(
        status=BulkEnrollJob.Status.QUEUED, created__lt=now - timezone.timedelta(hours=6)
    ).update(status=BulkEnrollJob.Status.FAILED, finished=now, error="The job never started: is a worker running?")
    return running + queued
