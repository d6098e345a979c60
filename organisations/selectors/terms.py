"""The terms (period of access and renewal) that assignments and rules give
the enrollments they make, by origin (``unit:<id>``, ``group:<id>``,
``rule:<id>``) and course: what ``plan_execute`` asks the batch for when it
enrolls, what the expiry run renews (``recurring_months``) and whom the
reminder scan therefore leaves out (``recurring_people``): only the people
each recurring origin still takes in."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)

from ..models import Assignment, EnrollmentOrigin, EnrollmentRule, UnitKind
from .targets import User, member_q, rule_q


@dataclass(frozen=True)
class OriginTerms:
    duration_days: int | None = None
    recur_months: int | None = None


NO_TERMS = OriginTerms()
_WITH_TERMS = Q(duration_days__isnull=False) | Q(recur_months__isnull=False)


def origin_terms(*, recurring_only: bool = False) -> dict[tuple[str, int], OriginTerms]:
    """(origin, course id) → the terms of the assignment or rule behind it,
    for every assignment and rule that sets any (or only those that recur).
    A course reached through a qualification takes the terms of the
    qualification's assignment. Where two links give one origin a course,
    the longer duration and the longer renewal win. At most four queries
    (two when nothing sets terms)."""
    return _origins(recurring_only=recurring_only).terms


@dataclass
class _Origins:
    terms: dict[tuple[str, int], OriginTerms]
    # Who each origin still takes in: the rule itself, or the unit's kind (a group is "group").
    rules: dict[int, EnrollmentRule]
    kinds: dict[str, tuple[str, int]]


def _origins(*, recurring_only: bool) -> _Origins:
    wanted = Q(recur_months__isnull=False) if recurring_only else _WITH_TERMS
    found: dict[tuple[str, int], list[OriginTerms]] = defaultdict(list)
    rules = {r.pk: r for r in EnrollmentRule.objects.filter(wanted, is_active=True)}
    if rules:
        for rule_id, course_id in EnrollmentRule.courses.through.objects.filter(enrollmentrule_id__in=rules).values_list("enrollmentrule_id", "course_id"):
            rule = rules[rule_id]
            found[(rule.origin, course_id)].append(OriginTerms(rule.duration_days, rule.recur_months))
    assignments = list(
        Assignment.objects.filter(wanted)
        .values_list("unit_id", "unit__kind", "group_id", "course_id", "qualification_id", "duration_days", "recur_months")
    )
    bundles: dict[int, list[int]] = defaultdict(list)
    qualifications = {a[4] for a in assignments if a[4] is not None}
    if qualifications:
        for unit_id, course_id in Assignment.objects.filter(unit_id__in=qualifications, course__isnull=False).values_list("unit_id", "course_id"):
            bundles[unit_id].append(course_id)
    kinds: dict[str, tuple[str, int]] = {}
    for unit_id, kind, group_id, course_id, qualification_id, days, months in assignments:
        origin = f"unit:{unit_id}" if unit_id is not None else f"group:{group_id}"
        kinds[origin] = (kind, unit_id) if unit_id is not None else (UnitKind.GROUP, group_id)
        for course in [course_id] if course_id is not None else bundles[qualification_id]:
            found[(origin, course)].append(OriginTerms(days, months))
    return _Origins({key: _longest(terms) for key, terms in found.items()}, rules, kinds)


def _longest(terms: list[OriginTerms]) -> OriginTerms:
    days = [t.duration_days for t in terms if t.duration_days]
    months = [t.recur_months for t in terms if t.recur_months]
    return OriginTerms(max(days) if days else None, max(months) if months else None)


def recurring_months(due: list[tuple[int, int, int]]) -> dict[int, int]:
    """The expiry run's renewal source (``enrollments.services.renewal_source_register``):
    of ``due`` (enrollment id, user id, course id), the enrollments an
    assignment or rule that recurs made, for people it still takes in (see
    ``_still_recurring``), with the months each renews for. A fixed number
    of queries whatever the number of rows: two when nothing recurs."""
    origins = _origins(recurring_only=True)
    if not origins.terms:
        return {}
    by_person = {(user_id, course_id): enrollment_id for enrollment_id, user_id, course_id in due}
    months: dict[int, int] = {}
    rows = EnrollmentOrigin.objects.filter(
        _still_recurring(origins), course_id__any_of=sorted({c for _, c in by_person}),
        user_id__any_of=sorted({u for u, _ in by_person}),
    ).values_list("origin", "user_id", "course_id")
    for origin, user_id, course_id in rows:
        enrollment_id = by_person.get((user_id, course_id))
        recur = origins.terms.get((origin, course_id), NO_TERMS).recur_months
        if enrollment_id is not None and recur:
            months[enrollment_id] = max(recur, months.get(enrollment_id, 0))
    return months


def recurring_people() -> QuerySet[EnrollmentOrigin] | None:
    """The reminder scan's renewing source (``enrollments.services.renewing_source_register``):
    the origin rows (``user_id``, ``course_id``) of every enrollment an
    assignment or rule that recurs made, in a course it recurs for, for
    people it still takes in: exactly the enrollments ``recurring_months``
    renews, as a query the scan joins into its claim. None when nothing
    recurs. Asked afresh each run, so a rule that stops recurring, an origin
    removed or a person who left counts at once. The queries of
    ``origin_terms`` (two when nothing recurs); the rows are not read here."""
    origins = _origins(recurring_only=True)
    if not origins.terms:
        return None
    return EnrollmentOrigin.objects.filter(_still_recurring(origins))


def _still_recurring(origins: _Origins) -> Q:
    """The origin rows that renew: one clause per recurring origin (a rule, a
    unit, a group), not per person, each keeping only the people the origin
    still takes in: the unit's or group's members (its company or department
    by placement), the people the rule matches now."""
    # Why asked here rather than by deleting origin rows when someone leaves:
    # membership changes by many paths (a member removed, a placement moved by
    # hand or by an import, a rule's criteria or a person's fields edited), and
    # a row kept is harmless while this one question stays true on each of them.
    courses: dict[str, list[int]] = defaultdict(list)
    for origin, course_id in origins.terms:
        courses[origin].append(course_id)
    wanted = Q()
    for origin, course_ids in sorted(courses.items()):
        kind, _sep, pk = origin.partition(":")
        if kind == "rule":
            who = rule_q(origins.rules[int(pk)])
        else:
            who = member_q(*origins.kinds[origin])
        wanted |= Q(origin=origin, course_id__in=sorted(course_ids), user_id__in=User.objects.filter(who).values("pk"))
    return wanted
