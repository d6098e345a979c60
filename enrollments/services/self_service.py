"""A learner's own enrollment: enrolling and unenrolling themself, and the
auto-enroll allowances their account turns into enrollments on activation."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from courses.models import Course
from enrollment_site.lib.bulk import bulk_upsert_changed
from enrollment_site.lib.errors import AppError

from .. import reasons
from ..models import Allowance, Enrollment, EnrollmentAudit, Source, State
from ..periods import Period, period_for
from ..periods_asked import asked_of
from ..rules import Status, self_enrollment_decide
from ..selectors import active_count
from .batch_decide import ended_period, state_of
from .locks import course_write_lock


@transaction.atomic
def allowance_consume_for(*, user) -> list[Enrollment]:
    """Turn every auto-enroll allowance for the user's email (by its key: any
    case, the domain in Unicode or punycode) into an active enrollment,
    audited. Called when an account's email is confirmed
    (``enrollments/signals.py``, on allauth's ``email_confirmed``). Returns the
    enrollments made; one a batch made at the same moment is that batch's
    (enrolled and audited once, by whichever wrote first). Each enrollment
    gets the period its invitation asked for (a duration counting from now),
    else its course's default."""
    if not user.email_key or not user.is_active:
        return []
    pending = Allowance.objects.filter(email_key=user.email_key, auto_enroll=True, used_at__isnull=True)
    # The courses' write locks first, as every batch takes them before it locks
    # allowances: taking the allowances first could deadlock with a batch of
    # one of these courses. An allowance a batch commits between this read and
    # the lock belongs to a course not yet locked: lock that one too (it is
    # rare, and the batch that made it has committed, so nothing waits on us).
    locked: set[int] = set()
    while course_ids := set(pending.values_list("course_id", flat=True)) - locked:
        course_write_lock(course_ids)
        locked |= course_ids
    allowances = list(pending.select_for_update().filter(course_id__in=locked).select_related("course").order_by("course_id"))
    if not allowances:
        return []
    now = timezone.now()
    existing = {e.course_id: e for e in Enrollment.objects.select_for_update().filter(user=user, course_id__in=[a.course_id for a in allowances])}
    rows, audits = [], {}
    for allowance in allowances:
        enrollment = existing.get(allowance.course_id)
        if enrollment is not None and enrollment.is_active:
            continue
        mode = enrollment.mode if enrollment is not None else allowance.course.default_mode
        period = period_for(allowance.course, asked_of(allowance), now=now)
        rows.append({
            "user_id": user.pk, "course_id": allowance.course_id, "is_active": True, "mode": mode, "source": Source.ACTIVATION,
            "created": now, "updated": now, "access_from": period.access_from, "access_until": period.access_until,
        })
        audits[allowance.course_id] = EnrollmentAudit(
            created=now, actor=allowance.created_by, course=allowance.course, user=user, identifier=user.email,
            state_before=State.ALLOWED_AUTO, state_after=State.ENROLLED, source=Source.ACTIVATION,
            reason=reasons.ACTIVATION,
            **_period_change(enrollment, period),
        )
    # A new enrollment has no row to lock: a batch enrolling this person at the
    # same moment may write it first. The upsert then leaves it alone and says
    # so, and that batch, not this, has audited it.
    made = bulk_upsert_changed(
        Enrollment, rows, unique_fields=["user", "course"], update_fields=["is_active", "updated", "access_from", "access_until"],
        changed="is_active", key="course",
    )
    if made:
        EnrollmentAudit.objects.bulk_create([audits[course_id] for course_id in sorted(made)])
    Allowance.objects.filter(pk__in=[a.pk for a in allowances]).update(used_at=now)
    return list(Enrollment.objects.filter(user=user, course_id__in=made).order_by("course_id")) if made else []


def _period_change(enrollment: Enrollment | None, period: Period) -> dict:
    """The audit's period columns for an enrollment (None: a new one) given ``period``."""
    return {
        "access_from_before": enrollment.access_from if enrollment is not None else None,
        "access_until_before": enrollment.access_until if enrollment is not None else None,
        "access_from_after": period.access_from, "access_until_after": period.access_until,
    }


class SelfEnrollmentRefused(AppError):
    """The learner may not enroll themself; the message says why, politely."""

    status = 403
    code = "self_enrollment_refused"


class WrongEnrollmentKey(SelfEnrollmentRefused):
    """The key typed is not the course's: the one refusal the key limit counts."""

    code = "wrong_enrollment_key"


@transaction.atomic
def enrollment_self_enroll(*, user, course: Course, enrollment_key: str = "") -> Enrollment:
    """Enroll a learner at their own request, within the course's rules.

    ``self_enrollment_decide`` decides, as it does for the course page; a refusal
    raises SelfEnrollmentRefused with its reason (WrongEnrollmentKey for a wrong
    key) and changes nothing. The enrollment gets the period the learner's
    invitation (not yet used) asked for (a duration counting from now), else the course's default."""
    # Lock the course row: two learners taking the last seat at once must not
    # both get in past the cap. FOR NO KEY UPDATE, like every lock of a course
    # row: FOR UPDATE would also block the foreign-key checks (FOR KEY SHARE)
    # of anyone writing rows of this course, among them a batch that holds the
    # counter rows this enrollment's trigger waits for: a deadlock.
    course = Course.objects.select_for_update(no_key=True).get(pk=course.pk)
    enrollment = Enrollment.objects.select_for_update().filter(user=user, course=course).first()
    if enrollment is not None and enrollment.is_active:
        return enrollment
    allowance = Allowance.objects.filter(course=course, email_key=user.email_key).first()
    now = timezone.now()
    # The counters rather than a COUNT of the course's enrollments: a few rows on a
    # course of any size. Every other cap-checked way in holds the same course lock.
    decision = self_enrollment_decide(
        course=course, is_enrolled=False, was_enrolled=enrollment is not None, invited=allowance is not None,
        active_count=active_count(course=course) if course.max_enrollments is not None else None, now=now, enrollment_key=enrollment_key,
    )
    if not decision.may_enroll:
        refusal = WrongEnrollmentKey if decision.status == Status.WRONG_KEY else SelfEnrollmentRefused
        raise refusal(decision.message)
    state_before = State.UNENROLLED if enrollment is not None else state_of(enrollment=None, allowance=allowance)
    # An unused invitation's period; a used one's was its first enrollment's.
    period = period_for(course, asked_of(allowance) if allowance is not None and allowance.used_at is None else None, now=now)
    period_change = _period_change(enrollment, period)
    if enrollment is not None:
        enrollment.is_active = True
        enrollment.access_from, enrollment.access_until = period.access_from, period.access_until
        enrollment.save(update_fields=["is_active", "updated", "access_from", "access_until"])
    else:
        # A new enrollment has no row to lock: the course team may enroll this
        # learner at the same moment and write it first. It is then theirs,
        # audited once, by them; the learner is enrolled all the same.
        made = bulk_upsert_changed(
            Enrollment,
            [{"user_id": user.pk, "course_id": course.pk, "is_active": True, "mode": course.default_mode, "source": Source.SELF,
              "created": now, "updated": now, "access_from": period.access_from, "access_until": period.access_until}],
            unique_fields=["user", "course"], update_fields=["is_active", "updated"], changed="is_active", key="user",
        )
        enrollment = Enrollment.objects.get(user=user, course=course)
        if user.pk not in made:
            return enrollment
    if allowance is not None and allowance.used_at is None:
        Allowance.objects.filter(pk=allowance.pk).update(used_at=now)
    EnrollmentAudit.objects.create(
        created=now, actor=user, course=course, user=user, identifier=user.username,
        state_before=state_before, state_after=State.ENROLLED, source=Source.SELF, **period_change,
    )
    return enrollment


@transaction.atomic
def enrollment_self_unenroll(*, user, course: Course) -> None:
    """Unenroll a learner at their own request; the row and its data are kept,
    and the audit entry records the period it ends (``ended_period``)."""
    enrollment = Enrollment.objects.select_for_update().filter(user=user, course=course, is_active=True).first()
    if enrollment is None:
        return
    enrollment.is_active = False
    enrollment.save(update_fields=["is_active", "updated"])
    EnrollmentAudit.objects.create(
        actor=user, course=course, user=user, identifier=user.username,
        state_before=State.ENROLLED, state_after=State.UNENROLLED, source=Source.SELF, **ended_period(enrollment),
    )
