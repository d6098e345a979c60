"""My Team: a manager enrolling their own reports in courses open to them."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import identifier_for
from courses.models import Course
from courses.rules import courses_managed_by
from enrollments.models import Enrollment, Outcome, Source
from enrollments.selectors import active_counts
from enrollments.services import enrollment_batch_update

from .. import reasons
from ..rules import is_own_report


def team_enroll_refusals(*, courses: list[Course], managed_ids: set[int], active: dict[int, int], newcomers: dict[int, int], at) -> list[str]:
    """Why a manager may not put reports into some of ``courses`` (pure: no
    queries). A course the manager manages anyway (its team, or a platform
    admin) is never refused. Any other course must be one a report could join
    by themself: self-enrollment on, no enrollment key, not invitation-only,
    within the enrollment window, and enough seats left for ``newcomers`` (the
    chosen reports not yet enrolled in it) on top of ``active`` enrollments."""
    refusals = []
    for course in courses:
        if course.pk in managed_ids:
            continue
        name = course.display_name
        if course.invitation_only:
            refusals.append(_("%(name)s is by invitation only.") % {"name": name})
        elif not course.self_enrollment:
            refusals.append(_("%(name)s does not take self-enrollment; its course team enrolls its learners.") % {"name": name})
        elif course.enrollment_key:
            refusals.append(_("%(name)s needs an enrollment key; ask its course team.") % {"name": name})
        elif not course.enrollment_is_open(at):
            refusals.append(_("Enrollment in %(name)s is closed.") % {"name": name})
        elif course.max_enrollments is not None and active.get(course.pk, 0) + newcomers.get(course.pk, 0) > course.max_enrollments:
            left = max(course.max_enrollments - active.get(course.pk, 0), 0)
            chosen = newcomers.get(course.pk, 0)
            seats = ngettext("%(name)s has %(left)s seat left", "%(name)s has %(left)s seats left", left) % {"name": name, "left": left}
            people = ngettext("you chose %(n)s person not yet enrolled", "you chose %(n)s people not yet enrolled", chosen) % {"n": chosen}
            refusals.append(_("%(seats)s; %(people)s.") % {"seats": seats, "people": people})
    return refusals


@transaction.atomic
def team_enroll(*, manager, users, courses, email_students: bool = False) -> dict[str, int]:
    """Enroll a manager's own reports in ``courses`` (My Team), audited with
    the manager as actor and source "team". Raises PermissionDenied if anyone
    is not the manager's active report, and ValidationError (nothing written)
    when a course is not open to the reports (see ``team_enroll_refusals``).
    Returns {"enrolled": new or reactivated enrollments, "already": left alone}.
    Queries grow with the number of courses, not of people."""
    people = sorted({u.pk: u for u in users}.values(), key=lambda u: u.pk)
    if not all(is_own_report(manager, u) for u in people):
        raise PermissionDenied(_("You can enroll your own reports only."))
    ids = sorted(c.pk for c in courses)
    # Lock the course rows in id order: two managers (or a manager and a
    # self-enrolling learner, who takes the same lock) filling the last seats
    # at once must not both get in past the cap.
    locked = list(Course.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk"))
    managed_ids = set(courses_managed_by(user=manager).filter(pk__in=ids).values_list("pk", flat=True))
    active = active_counts(course_ids=ids)
    enrolled_pairs = set(
        Enrollment.objects.filter(course_id__in=ids, user_id__in=[u.pk for u in people], is_active=True).values_list("course_id", "user_id")
    )
    newcomers = {pk: sum(1 for u in people if (pk, u.pk) not in enrolled_pairs) for pk in ids}
    refusals = team_enroll_refusals(courses=locked, managed_ids=managed_ids, active=active, newcomers=newcomers, at=timezone.now())
    if refusals:
        raise ValidationError(refusals)
    done = {"enrolled": 0, "already": 0}
    identifiers = [identifier_for(u) for u in people]
    for course in locked:
        result = enrollment_batch_update(
            course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=email_students,
            actor=manager, reason=reasons.MANAGER_ENROLLED % {"manager": manager.username}, source=Source.TEAM,
        )
        done["enrolled"] += sum(1 for r in result.results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED))
        done["already"] += sum(1 for r in result.results if r.outcome == Outcome.ALREADY_ENROLLED)
    return done
