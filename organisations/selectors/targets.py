"""Who is where: a person's company and department, a unit or a group as a
``Target`` (its members, its courses), the people a rule matches, and who
qualifies for a course through any of them."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from enrollment_site.lib.errors import NotFound

from ..models import Assignment, EnrollmentRule, Group, GroupMembership, OrgUnit, Placement, UnitKind, UnitMembership

User = get_user_model()


class TargetNotFound(NotFound):
    code = "no_such_unit"
    message = "There is no such unit or group; it may have been deleted."

    def __init__(self, message: str | None = None, **kwargs):
        # The message in the language of the request that raised it (AppError keeps a plain string).
        super().__init__(message or gettext("There is no such unit or group; it may have been deleted."), **kwargs)


def user_placement(*, user) -> Placement:
    """The person's company and department: their Placement, or an unsaved
    empty one when they have none (read it, never save it). One query, none
    when ``user`` was fetched with ``select_related("placement")``."""
    try:
        return user.placement
    except Placement.DoesNotExist:
        return Placement(user=user)


class Target:
    """A unit or a group, seen the same way by assignments: an origin key for
    the provenance table, a label for audit reasons, its members and its courses."""

    def __init__(self, *, unit=None, group=None):
        if (unit is None) == (group is None):
            raise ValueError("A target is a unit or a group.")
        self.unit, self.group = unit, group

    @classmethod
    def parse(cls, kind: str, pk: int) -> Target:
        """The unit of this kind (or the group) with this id; TargetNotFound
        otherwise (a 404 on a page, a failed job with its message in a worker)."""
        if kind == UnitKind.GROUP:
            group = Group.objects.filter(pk=pk).first()
            if group is None:
                raise TargetNotFound()
            return cls(group=group)
        unit = OrgUnit.objects.filter(pk=pk, kind=kind).first()
        if unit is None:
            raise TargetNotFound()
        return cls(unit=unit)

    @property
    def kind(self) -> str:
        return "group" if self.group is not None else self.unit.kind

    @property
    def obj(self):
        return self.group if self.group is not None else self.unit

    @property
    def pk(self) -> int:
        return self.obj.pk

    @property
    def origin(self) -> str:
        return f"group:{self.group.pk}" if self.group is not None else f"unit:{self.unit.pk}"

    @property
    def label(self) -> str:
        return f"group {self.group.name}" if self.group is not None else f"{self.unit.kind} {self.unit.name}"

    @property
    def title(self) -> str:
        """The unit as a page names it, in the page's language: "Department Sales"."""
        return gettext("%(kind)s %(name)s") % {"kind": UnitKind(self.kind).label, "name": self.obj.name}

    def members(self) -> QuerySet:
        return User.objects.filter(is_active=True).filter(member_q(self.kind, self.pk))

    def assignments(self) -> QuerySet:
        field = "group" if self.group is not None else "unit"
        return Assignment.objects.filter(**{field: self.obj}).select_related("course", "qualification")

    def course_ids(self) -> list[int]:
        """The courses members are enrolled in: linked directly, through a
        linked qualification, and (for a group) its own course list."""
        field = "group" if self.group is not None else "unit"
        quals = Assignment.objects.filter(**{field: self.obj, "qualification__isnull": False}).values("qualification_id")
        ids = set(
            Assignment.objects.filter(Q(**{field: self.obj}, course__isnull=False) | Q(unit_id__in=quals, course__isnull=False))
            .values_list("course_id", flat=True)
        )
        if self.group is not None:
            ids |= set(self.group.courses.values_list("id", flat=True))
        return sorted(ids)


def member_q(kind: str, pk) -> Q:
    """Users in unit ``pk`` of ``kind`` (pk may be a list or a subquery)."""
    many = not isinstance(pk, int)
    lookup = "__in" if many else ""
    if kind in (UnitKind.COMPANY, UnitKind.DEPARTMENT):
        # A join on the one-to-one: one placement per person, so it never
        # duplicates a user, and a rule naming a company and a department uses one join.
        return Q(**{f"placement__{kind}_id{lookup}": pk})
    if kind == UnitKind.GROUP:
        return Q(pk__in=GroupMembership.objects.filter(**{f"group_id{lookup}": pk}).values("user_id"))
    return Q(pk__in=UnitMembership.objects.filter(**{f"unit_id{lookup}": pk}).values("user_id"))


def rule_q(rule) -> Q:
    """The condition a user meets when every criterion the rule sets holds."""
    q = Q()
    if rule.company_id:
        q &= member_q(UnitKind.COMPANY, rule.company_id)
    if rule.department_id:
        q &= member_q(UnitKind.DEPARTMENT, rule.department_id)
    if rule.team_id:
        q &= member_q(UnitKind.TEAM, rule.team_id)
    if rule.function_id:
        q &= member_q(UnitKind.FUNCTION, rule.function_id)
    if rule.group_id:
        q &= member_q(UnitKind.GROUP, rule.group_id)
    if rule.language:
        q &= Q(language__iexact=rule.language)
    if rule.added_before:
        q &= Q(date_added__lt=rule.added_before)
    if rule.added_after:
        q &= Q(date_added__gt=rule.added_after)
    if rule.added_within_days is not None:
        q &= Q(date_added__gte=timezone.localdate() - timedelta(days=rule.added_within_days))
    if rule.manager_id:
        q &= Q(manager_id=rule.manager_id)
    return q


def rule_users(rule) -> QuerySet:
    """Active users matching every criterion of ``rule``."""
    return User.objects.filter(is_active=True).filter(rule_q(rule))


def course_coverage_q(course_id: int) -> Q:
    """Users who qualify for ``course_id`` through any unit, group or active
    rule as things stand: a handful of queries, whatever the number of users."""
    quals = set(Assignment.objects.filter(unit__kind=UnitKind.QUALIFICATION, course_id=course_id).values_list("unit_id", flat=True))
    links = Assignment.objects.filter(Q(course_id=course_id) | Q(qualification_id__in=quals)).values_list("unit_id", "unit__kind", "group_id")
    by_kind: dict[str, set[int]] = {}
    for unit_id, kind, group_id in links:
        if unit_id:
            by_kind.setdefault(kind, set()).add(unit_id)
        else:
            by_kind.setdefault(UnitKind.GROUP, set()).add(group_id)
    by_kind.setdefault(UnitKind.GROUP, set()).update(Group.objects.filter(courses=course_id).values_list("id", flat=True))
    q = Q(pk__in=[])
    for kind, ids in by_kind.items():
        if ids:
            q |= member_q(kind, sorted(ids))
    for rule in EnrollmentRule.objects.filter(is_active=True, courses=course_id):
        q |= rule_q(rule)
    return q


def rules_snapshot(*, user_ids: list[int]) -> dict[int, set[int]]:
    """Which of ``user_ids`` each active rule matches now: one query per rule.
    Taken before a change, so that non-retroactive rules enroll only newcomers."""
    return {
        rule.pk: set(rule_users(rule).filter(pk__in=user_ids).values_list("pk", flat=True))
        for rule in EnrollmentRule.objects.filter(is_active=True)
    }
