"""Who may enroll themself in a course, and if not, why.

One pure function decides it for the course page, the catalog and the enroll
service, so that the page never offers an Enroll button the service would
refuse, and never hides one it would accept."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.utils import timezone
from django.utils.formats import date_format

from courses.models import Course


class Status(enum.StrEnum):
    OPEN = "open"
    ENROLLED = "enrolled"
    INVITATION_ONLY = "invitation only"
    TEAM_ONLY = "team only"
    NOT_YET_OPEN = "not yet open"
    CLOSED = "closed"
    FULL = "full"
    WRONG_KEY = "wrong key"


@dataclass(frozen=True)
class SelfEnrollment:
    """The answer for one person and one course."""

    status: Status
    invited: bool = False  # an allowance for the person's email exists
    needs_key: bool = False  # open, and the enrollment key must be typed
    was_enrolled: bool = False  # an inactive enrollment exists: enrolling restores it
    when: datetime | None = None  # when enrollment opens or closed

    @property
    def may_enroll(self) -> bool:
        return self.status == Status.OPEN

    @property
    def message(self) -> str:
        """Why the person may not enroll, in a sentence; empty when they may."""
        match self.status:
            case Status.INVITATION_ONLY:
                return "This course is by invitation only. Ask the course team for an invitation."
            case Status.TEAM_ONLY:
                return "Learners cannot enroll themselves in this course; the course team enrolls its learners."
            case Status.NOT_YET_OPEN:
                return f"Enrollment opens on {_moment(self.when)}."
            case Status.CLOSED:
                return f"Enrollment closed on {_moment(self.when)}."
            case Status.FULL:
                return "This course is full."
            case Status.WRONG_KEY:
                return "That enrollment key is not right. Check it with your course team."
        return ""

    @property
    def label(self) -> str:
        """A word or two for the catalog's Enrollment column."""
        match self.status:
            case Status.OPEN:
                return "Invited" if self.invited else ("Open, with a key" if self.needs_key else "Open")
            case Status.NOT_YET_OPEN:
                return f"Opens {date_format(timezone.localtime(self.when), 'j M Y')}"
            case Status.CLOSED:
                return f"Closed {date_format(timezone.localtime(self.when), 'j M Y')}"
            case Status.TEAM_ONLY:
                return "By the course team"
        return self.status.capitalize()


def _moment(when: datetime | None) -> str:
    assert when is not None, "NOT_YET_OPEN and CLOSED answers carry their moment"
    local = timezone.localtime(when)
    return f"{date_format(local, 'j F Y')} at {local:%H:%M} ({local.tzname()})"


def self_enrollment_decide(
    *,
    course: Course,
    is_enrolled: bool,
    was_enrolled: bool,
    invited: bool,
    active_count: int | None,
    now: datetime,
    enrollment_key: str | None = None,
) -> SelfEnrollment:
    """May this person enroll themself in ``course`` now, and if not, why.

    ``active_count`` is the number of active enrollments (only needed when the
    course has a cap). ``enrollment_key`` is what the person typed; None when
    they have not been asked yet (the course page), so a keyed course counts as
    open with ``needs_key``.

    An allowance for the person's email (``invited``) lets them in past the
    enrollment dates, into an invitation-only or team-only course and without
    the key; the cap holds for everyone."""
    answer = partial(SelfEnrollment, invited=invited, was_enrolled=was_enrolled)
    if is_enrolled:
        return SelfEnrollment(Status.ENROLLED, invited=invited)
    if not invited:
        if course.invitation_only:
            return answer(Status.INVITATION_ONLY)
        if not course.self_enrollment:
            return answer(Status.TEAM_ONLY)
        if course.enrollment_start and now < course.enrollment_start:
            return answer(Status.NOT_YET_OPEN, when=course.enrollment_start)
        if course.enrollment_end and now > course.enrollment_end:
            return answer(Status.CLOSED, when=course.enrollment_end)
    if course.max_enrollments is not None and (active_count or 0) >= course.max_enrollments:
        return answer(Status.FULL)
    needs_key = bool(course.enrollment_key) and not invited
    if needs_key and enrollment_key is not None and enrollment_key.strip() != course.enrollment_key:
        return answer(Status.WRONG_KEY, needs_key=True)
    return answer(Status.OPEN, needs_key=needs_key)
