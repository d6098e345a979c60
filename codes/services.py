"""Generating, redeeming and deactivating enrollment codes."""

from __future__ import annotations

import datetime
import functools
import logging
import re
import secrets
import unicodedata
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.selectors import identifier_for
from accounts.types import Actor, recorded_user
from courses.models import MAX_DURATION_DAYS, Course
from enrollment_site.lib.errors import AppError, Conflict
from enrollments.models import Enrollment, Source
from enrollments.periods import PeriodRequest
from enrollments.selectors import active_counts
from enrollments.services import enrollment_batch_update
from organisations.models import Group
from organisations.services import group_add_members

from . import reasons
from .models import CodeBatch, EnrollmentCode, Redemption, Status, end_of_day, zone_today

logger = logging.getLogger(__name__)

# No look-alikes: 0/O, 1/I/L are left out. 31 symbols, 12 drawn: about 59.5 bits.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RANDOM_LENGTH = 12
GROUP_SIZE = 4
MAX_COUNT = 500
MAX_PREFIX_LENGTH = 20
PREFIX_RE = re.compile(r"^[A-Za-z0-9-]*$")
# Anything longer than the longest possible code is not worth a query.
MAX_INPUT_LENGTH = 100
_GENERATION_ATTEMPTS = 5
# How an expiry date reads in messages and tables: "31 Dec 2026".
EXPIRY_DATE_FORMAT = "j M Y"


# --- normalization and generation ---------------------------------------------

def normalize_code(text: str) -> str:
    """The comparison key of what someone typed: NFKC, upper case, and no white
    space, dashes (any kind) or invisible format characters."""
    text = unicodedata.normalize("NFKC", text or "").upper()
    return "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch) in ("Pd", "Cf")))


def random_part() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))


def format_code(prefix: str, random: str) -> str:
    groups = [random[i : i + GROUP_SIZE] for i in range(0, len(random), GROUP_SIZE)]
    return "-".join(([prefix] if prefix else []) + groups)


def valid_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this server knows (``Asia/Tokyo``)."""
    return name in _time_zone_names()


@functools.cache
def _time_zone_names() -> frozenset[str]:
    # Read once per process: available_timezones() walks the zone database on disk.
    return frozenset(zoneinfo.available_timezones())


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone, sorted, for a select."""
    return [(name, name) for name in sorted(_time_zone_names())]


def _validate_options(*, courses, groups, count, prefix, expires_on, max_uses, duration_days=None, time_zone: str) -> None:
    errors: dict[str, list[str]] = {}
    limit = MAX_DURATION_DAYS
    if duration_days is not None and (
        not isinstance(duration_days, int) or isinstance(duration_days, bool) or not 1 <= duration_days <= MAX_DURATION_DAYS
    ):
        errors.setdefault("duration_days", []).append(
            _("Days of access must be between 1 and %(max)s (ten years), or blank.") % {"max": limit}
        )
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        errors.setdefault("count", []).append(_("The number of codes must be between 1 and %(max)s.") % {"max": MAX_COUNT})
    if len(prefix) > MAX_PREFIX_LENGTH:
        errors.setdefault("prefix", []).append(
            _("The prefix may be at most %(max)s characters long (it has %(length)s).") % {"max": MAX_PREFIX_LENGTH, "length": len(prefix)}
        )
    if not PREFIX_RE.match(prefix):
        errors.setdefault("prefix", []).append(_("The prefix may contain only letters A–Z, digits and dashes."))
    if not courses and not groups:
        errors.setdefault("courses", []).append(_("Choose at least one course or group for the codes to unlock."))
    if max_uses is not None and (not isinstance(max_uses, int) or max_uses < 1):
        errors.setdefault("max_uses", []).append(_("Max uses must be at least 1 (or unlimited)."))
    if not valid_time_zone(time_zone):
        errors.setdefault("time_zone", []).append(_("Choose a time zone from the list, such as Europe/Paris."))
    elif expires_on is not None and expires_on < zone_today(time_zone):
        errors.setdefault("expires_on", []).append(
            _("The expiry date must be today or later (today is %(today)s in %(time_zone)s).")
            % {"today": date_format(zone_today(time_zone), EXPIRY_DATE_FORMAT), "time_zone": time_zone}
        )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def code_batch_generate(
    *,
    actor: Actor,
    courses: Iterable[Course] = (),
    groups: Iterable[Group] = (),
    count: int,
    prefix: str = "",
    expires_on: datetime.date | None = None,
    max_uses: int | None = 1,
    may_exceed_cap: bool = False,
    duration_days: int | None = None,
    time_zone: str = "",
) -> CodeBatch:
    """Generate ``count`` codes unlocking ``courses`` and ``groups``.

    The caller has checked that ``actor`` may manage every course and group.
    Raises ValidationError (by field) and creates nothing when an option is out
    of range: count 1..500, prefix up to 20 letters, digits or dashes, at least
    one target, max_uses None (unlimited) or >= 1, expiry date today or later
    in ``time_zone`` (the codes work until the end of ``expires_on`` there;
    blank: the site's TIME_ZONE; an unknown zone is a ``time_zone`` error).
    ``may_exceed_cap`` lets the codes enroll into a course that is full;
    ``duration_days`` (1 to ten years) gives that many days of access from
    redeeming (blank: each course's default period). The
    codes are inserted in one statement; a collision with an existing code (the
    unique normalized column) regenerates the whole set and tries again."""
    courses, groups = list(courses), list(groups)
    prefix = (prefix or "").strip()
    time_zone = time_zone or settings.TIME_ZONE
    _validate_options(
        courses=courses, groups=groups, count=count, prefix=prefix, expires_on=expires_on, max_uses=max_uses, duration_days=duration_days,
        time_zone=time_zone,
    )
    expires_at = end_of_day(expires_on, time_zone) if expires_on is not None else None
    prefix = prefix.upper().strip("-")
    now = timezone.now()
    batch = CodeBatch.objects.create(
        created_by=recorded_user(actor),
        created=now, count=count, prefix=prefix, expires_on=expires_on, time_zone=time_zone, max_uses=max_uses,
        may_exceed_cap=may_exceed_cap, duration_days=duration_days,
    )
    # Each link carries its batch's created: the index a target's newest batches are read from.
    batch.courses.set(courses, through_defaults={"created": now})
    batch.groups.set(groups, through_defaults={"created": now})
    for attempt in range(1, _GENERATION_ATTEMPTS + 1):
        seen: set[str] = set()
        rows: list[EnrollmentCode] = []
        while len(rows) < count:
            code = format_code(prefix, random_part())
            key = normalize_code(code)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                EnrollmentCode(
                    code=code, normalized=key, batch=batch, max_uses=max_uses, expires_on=expires_on, expires_at=expires_at, created=now,
                )
            )
        try:
            # A savepoint, so that a collision leaves the outer transaction usable.
            with transaction.atomic():
                EnrollmentCode.objects.bulk_create(rows)
        except IntegrityError:
            logger.warning("code generation collided with an existing code (attempt %d); regenerating", attempt)
            continue
        return batch
    raise CodeGenerationFailed()


class CodeGenerationFailed(Conflict):
    """Every attempt collided with existing codes (vanishingly rare); nothing was kept."""

    code = "code_generation_failed"
    # Lazy, so that it reads in the language of whoever sees it (AppError types it str).
    message = gettext_lazy("Could not generate unique codes; try again.")  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(self.message)  # the message may be lazy: in the language active when shown


# --- redemption -------------------------------------------------------------------

class RedemptionError(AppError):
    """A code cannot be redeemed; ``reason`` names why and the message says so to the learner."""

    reason = "invalid"
    code = "not_redeemable"
    # Lazy, so that it reads in the language of whoever sees it (AppError types it str).
    message = gettext_lazy("This code cannot be redeemed.")  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(self.message)  # the message may be lazy: in the language active when shown


class UnknownCode(RedemptionError):
    reason = "unknown"
    message = gettext_lazy("There is no such code. Check what you typed and try again.")


class CodeExpired(RedemptionError):
    reason = Status.EXPIRED
    message = gettext_lazy("This code has expired.")

    @classmethod
    def for_code(cls, code: EnrollmentCode) -> CodeExpired:
        assert code.expires_on is not None, "only a code with an expiry date expires"
        # The learner sees the day the course team chose and its zone, as every page shows them.
        return cls(
            _("This code expired at the end of %(date)s (%(time_zone)s).")
            % {"date": date_format(code.expires_on, EXPIRY_DATE_FORMAT), "time_zone": code.batch.time_zone}
        )


class CodeUsedUp(RedemptionError):
    reason = Status.USED
    message = gettext_lazy("This code has already been used as many times as it allows.")


class CodeDeactivated(RedemptionError):
    reason = Status.DEACTIVATED
    message = gettext_lazy("This code has been deactivated and can no longer be used.")


class CourseFull(RedemptionError):
    reason = "course_full"
    message = gettext_lazy("A course this code unlocks is full.")

    @classmethod
    def for_course(cls, course: Course) -> CourseFull:
        return cls(_("%(course)s is full.") % {"course": course.display_name})


_ERRORS: dict[str, type[RedemptionError]] = {Status.EXPIRED: CodeExpired, Status.USED: CodeUsedUp, Status.DEACTIVATED: CodeDeactivated}


@dataclass
class RedemptionResult:
    code: EnrollmentCode
    courses: list[Course] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    already_redeemed: bool = False


def _targets(batch_id: int) -> tuple[list[Course], list[Group]]:
    """The courses a code unlocks, its groups' courses included, in id order, and its groups."""
    groups = list(Group.objects.filter(code_batches=batch_id).order_by("id"))
    # One filter with OR rather than a UNION: SQLite refuses a UNION of querysets
    # that carry Course's default ordering, and distinct() removes the join's repeats.
    courses = list(
        Course.objects.filter(Q(code_batches=batch_id) | Q(learner_groups__code_batches=batch_id)).distinct().order_by("id")
    )
    return courses, groups


@transaction.atomic
def code_redeem(*, code: str, user) -> RedemptionResult:
    """Redeem what the learner typed as ``code``.

    Enrolls the user in every course the code unlocks (audited with source
    ``code``) and adds them to every group. A user redeems a code once: doing
    it again returns ``already_redeemed=True`` and changes nothing. Raises
    UnknownCode, CodeExpired, CodeUsedUp or CodeDeactivated, with nothing
    changed, when the code cannot be redeemed, and CourseFull (nothing changed)
    when a course it unlocks has no seat left for the user, unless the code's
    batch may exceed the cap. The enrollments get the batch's days of access
    from now, or each course's default period.

    Lock order: the code row, then the course rows in id order, then (in
    ``enrollment_batch_update``) the enrollment rows. Self-enrollment and My Team
    take course rows then enrollments and no code row, so no cycle is possible."""
    key = normalize_code(code)
    if not key or len(key) > MAX_INPUT_LENGTH:
        raise UnknownCode()
    # Race: concurrent redemptions of one code would all see uses < max_uses and
    # over-redeem it. Locking the code row (one row, never the table) queues them
    # here, so the status check and the increment below see the latest count.
    row = EnrollmentCode.objects.select_for_update().filter(normalized=key).first()
    if row is None:
        raise UnknownCode()
    courses, groups = _targets(row.batch_id)
    # Checked before the status: a double submit of a single-use code must answer
    # the second request with the same success, not with "used up".
    if Redemption.objects.filter(code=row, user=user).exists():
        return RedemptionResult(code=row, courses=courses, groups=groups, already_redeemed=True)
    status = row.status
    if status == Status.EXPIRED:
        raise CodeExpired.for_code(row)
    if status != Status.ACTIVE:
        raise _ERRORS[status]()

    _check_seats(courses=courses, user=user, batch_id=row.batch_id)

    Redemption.objects.create(code=row, user=user)
    EnrollmentCode.objects.filter(pk=row.pk).update(uses=F("uses") + 1)
    row.uses += 1
    identifier = identifier_for(user)
    reason = reasons.REDEEMED % {"code": row.code}
    duration = CodeBatch.objects.values_list("duration_days", flat=True).get(pk=row.batch_id)
    period = PeriodRequest(duration_days=duration) if duration else None
    for course in courses:
        enrollment_batch_update(
            course=course, identifiers=[identifier], action="enroll", auto_enroll=True, email_students=False,
            actor=user, reason=reason, source=Source.CODE, period=period,
        )
    for group in groups:
        # The group's courses are already enrolled above, in course-id order.
        group_add_members(group=group, users=[user], actor=user, source=Source.CODE, reason=reason)
    return RedemptionResult(code=row, courses=courses, groups=groups)


def _check_seats(*, courses: list[Course], user, batch_id: int) -> None:
    """Raise CourseFull for the first capped course (in id order) without a
    seat for ``user``; one already active in a course takes no new seat."""
    # Race: learners redeeming (or self-enrolling, or enrolled by My Team) into
    # the last seats at once would all count the same free seats. The course row
    # lock is the one self-enrollment and My Team take, so they queue here; id
    # order, like every other multi-course write, so two redemptions cannot
    # deadlock on each other's courses.
    capped = [c.pk for c in courses if c.max_enrollments is not None]
    if not capped or CodeBatch.objects.filter(pk=batch_id, may_exceed_cap=True).exists():
        return
    locked = list(Course.objects.select_for_update(no_key=True).filter(pk__in=capped).order_by("id"))
    active = active_counts(course_ids=capped)
    mine = set(Enrollment.objects.filter(course_id__in=capped, user=user, is_active=True).values_list("course_id", flat=True))
    for course in locked:
        assert course.max_enrollments is not None
        if course.pk not in mine and active.get(course.pk, 0) >= course.max_enrollments:
            raise CourseFull.for_course(course)


# --- deactivation ---------------------------------------------------------------

def codes_deactivate(*, codes, actor: Actor) -> int:
    """Deactivate the codes of a queryset that are not deactivated yet; returns how many.
    Immediate and final: a redemption waiting on a code's lock sees it afterwards."""
    return codes.filter(deactivated_at__isnull=True).update(
        deactivated_at=timezone.now(), deactivated_by=actor if getattr(actor, "is_authenticated", False) else None
    )


@transaction.atomic
def code_deactivate(*, code: EnrollmentCode, actor: Actor) -> bool:
    """Deactivate one code; False if it already was."""
    return codes_deactivate(codes=EnrollmentCode.objects.filter(pk=code.pk), actor=actor) == 1
