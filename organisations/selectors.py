"""Reads of groups, with the permission-checked fetch every group page goes through."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.rules import is_platform_admin
from courses.rules import courses_managed_by

from .models import Group, GroupMembership
from .rules import can_manage_group

User = get_user_model()


def group_for_leader(request, group_id: int) -> Group:
    """The group if the requesting user leads it (or is a platform admin).

    Raises Http404 for an unknown id and PermissionDenied (403) otherwise."""
    group = get_object_or_404(Group, pk=group_id)
    if not can_manage_group(request.user, group):
        raise PermissionDenied("You do not lead this group.")
    return group


def users_by_identifier(identifiers: list) -> list[tuple]:
    """Each parsed identifier (enrollment_site.lib.identifiers) with the active
    account it names, or None: emails and usernames match whatever their case;
    of two usernames that differ only in case the exact spelling wins. Two
    queries at most, whatever the number of identifiers."""
    from django.db.models.functions import Lower

    from enrollment_site.lib.identifiers import Kind

    emails = {i.key for i in identifiers if i.kind == Kind.EMAIL}
    names = {i.key for i in identifiers if i.kind == Kind.USERNAME}
    active = User.objects.filter(is_active=True).order_by("pk")
    by_email = {u.key: u for u in active.annotate(key=Lower("email")).filter(key__in=emails)} if emails else {}
    by_name: dict[str, list] = {}
    for user in active.annotate(key=Lower("username")).filter(key__in=names) if names else []:
        by_name.setdefault(user.key, []).append(user)
    resolved = []
    for ident in identifiers:
        if ident.kind == Kind.EMAIL:
            user = by_email.get(ident.key)
        elif ident.kind == Kind.USERNAME:
            candidates = by_name.get(ident.key, [])
            user = next((u for u in candidates if u.username == ident.text), candidates[0] if candidates else None)
        else:
            user = None
        resolved.append((ident, user))
    return resolved


# --- Organisation units and rules -------------------------------------------

def org_admin_required(request) -> None:
    """Every /organisation/ page: platform administrators only (403 otherwise)."""
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform administrators manage the organisation.")


class Target:
    """A unit or a group, seen the same way by assignments: an origin key for
    the provenance table, a label for audit reasons, its members and its courses."""

    def __init__(self, *, unit=None, group=None):
        if (unit is None) == (group is None):
            raise ValueError("A target is a unit or a group.")
        self.unit, self.group = unit, group

    @classmethod
    def parse(cls, kind: str, pk: int) -> "Target":
        from .models import OrgUnit, UnitKind

        if kind == UnitKind.GROUP:
            return cls(group=get_object_or_404(Group, pk=pk))
        return cls(unit=get_object_or_404(OrgUnit, pk=pk, kind=kind))

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

    def members(self) -> QuerySet:
        return User.objects.filter(is_active=True).filter(member_q(self.kind, self.pk))

    def assignments(self) -> QuerySet:
        from .models import Assignment

        field = "group" if self.group is not None else "unit"
        return Assignment.objects.filter(**{field: self.obj}).select_related("course", "qualification")

    def course_ids(self) -> list[int]:
        """The courses members are enrolled in: linked directly, through a
        linked qualification, and (for a group) its own course list."""
        from .models import Assignment

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
    from .models import UnitKind, UnitMembership

    many = not isinstance(pk, int)
    lookup = "__in" if many else ""
    if kind == UnitKind.COMPANY:
        return Q(**{f"company_id{lookup}": pk})
    if kind == UnitKind.DEPARTMENT:
        return Q(**{f"department_id{lookup}": pk})
    if kind == UnitKind.GROUP:
        return Q(pk__in=GroupMembership.objects.filter(**{f"group_id{lookup}": pk}).values("user_id"))
    return Q(pk__in=UnitMembership.objects.filter(**{f"unit_id{lookup}": pk}).values("user_id"))


def rule_q(rule) -> Q:
    """The condition a user meets when every criterion the rule sets holds."""
    from .models import UnitKind

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
    from .models import Assignment, EnrollmentRule, UnitKind

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


def user_enrollments(*, user) -> QuerySet:
    """A person's enrollments with their course, newest first, each with the
    source of its latest audited change (how the person is enrolled)."""
    from django.db.models import OuterRef, Subquery

    from enrollments.models import Enrollment, EnrollmentAudit

    latest = EnrollmentAudit.objects.filter(course=OuterRef("course_id"), user=OuterRef("user_id")).order_by("-created", "-id")
    return (
        Enrollment.objects.filter(user=user).select_related("course")
        .annotate(last_source=Subquery(latest.values("source")[:1]), last_reason=Subquery(latest.values("reason")[:1]))
        .order_by("-created")
    )


# --- My Team ------------------------------------------------------------------------

def courses_open_to_reports(*, manager, at=None) -> QuerySet:
    """Courses a manager may put their reports into from My Team: those a
    report could join by themself right now (self-enrollment on, no
    enrollment key, not invitation-only, within the enrollment window, a seat
    left), plus every course the manager may manage anyway (their course
    teams; all for platform admins). See ``team_enroll_refusals`` for the
    same policy applied at the moment of writing."""
    from courses.models import Course

    at = at or timezone.now()
    open_q = (
        Q(self_enrollment=True, invitation_only=False, enrollment_key="")
        & (Q(enrollment_start__isnull=True) | Q(enrollment_start__lte=at))
        & (Q(enrollment_end__isnull=True) | Q(enrollment_end__gte=at))
        & (Q(max_enrollments__isnull=True) | Q(active_count__lt=F("max_enrollments")))
    )
    managed = courses_managed_by(user=manager).values("pk")
    return (
        Course.objects.annotate(active_count=Count("enrollments", filter=Q(enrollments__is_active=True)))
        .filter(open_q | Q(pk__in=managed))
        .order_by("display_name", "pk")
    )
