"""Membership of units and groups: creating, renaming and deleting them,
adding and removing people (with a per-identifier outcome), and enrolling
new members in the unit's or group's courses."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from accounts.selectors import identifier_for, users_by_identifier
from accounts.types import Actor
from courses.models import Course
from enrollment_site.lib.bulk import bulk_insert_new
from enrollment_site.lib.identifiers import Kind, parse_identifiers
from enrollments.models import Source
from enrollments.services import enrollment_batch_update

from ..models import SINGLE_KINDS, Group, GroupMembership, OrgUnit, Placement, UnitMembership
from ..selectors.plans import CoursePlan, Plan, courses_in, plan_enroll, plan_unenroll
from ..selectors.targets import Target, rules_snapshot
from .enrollment_rules import rules_reconcile
from .people import place_in
from .plans import plan_execute

User = get_user_model()


def unit_save(*, obj) -> object:
    """Create or rename a unit or group (enrollments follow from assignments, not names)."""
    obj.full_clean()
    obj.save()
    return obj


@transaction.atomic
def unit_remove(*, obj) -> None:
    """Delete a unit or group. Nobody is unenrolled: their enrollments stay as
    they are. Raises ProtectedError while a rule names the unit."""
    obj.delete()


@transaction.atomic
def group_add_members(*, group: Group, users: Iterable, actor: Actor, source: str = Source.ADMIN, reason: str = "") -> list:
    """Add users to a group and enroll them in each of its courses.

    Idempotent: people already in the group stay as they are (their joining
    date is kept) and only missing enrollments are made, each audited with
    ``source``. Returns the users this call made members (not those a
    concurrent add made first). Queries grow with the number of the group's
    courses, not with the number of users."""
    users = {u.pk: u for u in users if u is not None and u.is_active}
    if not users:
        return []
    joined = _join(Target(group=group), sorted(users), source)
    identifiers = [identifier_for(users[pk]) for pk in sorted(users)]
    before = rules_snapshot(user_ids=sorted(users))
    operation_id = uuid.uuid4()  # one undo for every course
    # Course-id order, like every other multi-course write, so that two
    # transactions touching the same enrollments lock them in the same order.
    # The group's own courses and those of qualifications assigned to it.
    for course in Course.objects.filter(pk__in=Target(group=group).course_ids()).order_by("id"):
        enrollment_batch_update(
            course=course, identifiers=identifiers, action="enroll", auto_enroll=True, email_students=False,
            actor=actor, reason=reason or f"Joined group {group.name}", source=source, operation_id=operation_id,
        )
    # Joining a group can make people match rules that name it.
    rules_reconcile(user_ids=sorted(users), before=before, actor=actor, operation_id=operation_id)
    return [users[pk] for pk in sorted(users) if pk in joined]


def _join(target: Target, user_ids: list[int], source: str) -> set[int]:
    """Make these people members of ``target``; returns the ids of those who
    were not (for a company or department, everyone placed there now). A
    member's row, and their joining date, stay as they are: also one a
    concurrent add inserted first, which the insert waits for and skips, so
    that only the add that made someone a member says so."""
    now = timezone.now()
    if target.group is not None:
        rows = [{"group_id": target.group.pk, "user_id": pk, "joined": now, "source": source} for pk in user_ids]
        return bulk_insert_new(GroupMembership, rows, key="user")
    if target.unit.kind in SINGLE_KINDS:
        place_in(kind=target.unit.kind, unit_id=target.unit.pk, user_ids=user_ids)
        return set(user_ids)
    rows = [{"unit_id": target.unit.pk, "user_id": pk, "joined": now, "source": source} for pk in user_ids]
    return bulk_insert_new(UnitMembership, rows, key="user")


def _leave(target: Target, user_ids: list[int]) -> None:
    if target.group is not None:
        GroupMembership.objects.filter(group=target.group, user_id__in=user_ids).delete()
    elif target.unit.kind in SINGLE_KINDS:
        Placement.objects.filter(user_id__in=user_ids, **{f"{target.unit.kind}_id": target.unit.pk}).update(**{f"{target.unit.kind}_id": None})
    else:
        UnitMembership.objects.filter(unit=target.unit, user_id__in=user_ids).delete()


@transaction.atomic
def unit_members_add(*, target: Target, users: Iterable, actor: Actor, email_students: bool = False, source: str = "admin") -> dict[str, int]:
    """Add people to a unit or group (a company or department replaces the
    one they had) and enroll them in its courses; then apply the rules.
    Idempotent. Moving someone out of their old company never unenrolls them."""
    return _members_add(target=target, users=users, actor=actor, email_students=email_students, source=source)[0]


def _members_add(*, target: Target, users: Iterable, actor: Actor, email_students: bool, source: str) -> tuple[dict[str, int], set[int]]:
    """``unit_members_add``, also returning whom ``_join`` made members."""
    user_ids = sorted({u.pk for u in users if u is not None and u.is_active})
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    if not user_ids:
        return totals, set()
    before = rules_snapshot(user_ids=user_ids)
    joined = _join(target, user_ids, source)
    plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
    plan.courses = [plan_enroll(course=c, users=User.objects.filter(pk__in=user_ids, is_active=True)) for c in courses_in(target.course_ids())]
    operation_id = uuid.uuid4()  # one undo for every course and rule
    for key, value in plan_execute(plan=plan, actor=actor, email_students=email_students, operation_id=operation_id).items():
        totals[key] += value
    for key, value in rules_reconcile(user_ids=user_ids, before=before, actor=actor, email_students=email_students,
                                      operation_id=operation_id).items():
        totals[key] += value
    return totals, joined


@dataclass
class MemberOutcome:
    """What adding one identifier to a unit did (the Members tab's results)."""

    ADDED = "added"
    ALREADY = "already a member"
    MOVED = "moved"
    NO_SUCH_USER = "no such user"
    INVALID = "invalid"
    ERRORS = (NO_SUCH_USER, INVALID)

    identifier: str
    outcome: str
    username: str = ""
    full_name: str = ""
    moved_from: str = ""

    @staticmethod
    def label(outcome: str) -> str:
        """An outcome as the page says it (the stored value stays English)."""
        labels = {
            MemberOutcome.ADDED: pgettext("member outcome", "added"),
            MemberOutcome.ALREADY: pgettext("member outcome", "already a member"),
            MemberOutcome.MOVED: pgettext("member outcome", "moved"),
            MemberOutcome.NO_SUCH_USER: pgettext("member outcome", "no such user"),
            MemberOutcome.INVALID: pgettext("member outcome", "invalid"),
        }
        return labels.get(outcome, outcome)

    @property
    def text(self) -> str:
        if self.outcome == self.MOVED:
            return _("moved from %(unit)s") % {"unit": self.moved_from}
        return self.label(self.outcome)

    def as_dict(self) -> dict:
        return {"identifier": self.identifier, "outcome": self.outcome, "text": self.text, "username": self.username,
                "full_name": self.full_name, "error": self.outcome in self.ERRORS}


def member_outcomes(*, resolved: list[tuple], already: set[int], previous: dict[int, str]) -> list[MemberOutcome]:
    """Decide each identifier's outcome (pure: no queries). ``resolved`` pairs
    each parsed identifier with its account or None, ``already`` holds the ids
    of people in the unit now, ``previous`` the name of the company or
    department someone leaves by joining. A person named twice (by username
    and by email) gets the first outcome twice."""
    outcomes: list[MemberOutcome] = []
    seen: dict[int, MemberOutcome] = {}
    for ident, user in resolved:
        if user is None:
            outcome = MemberOutcome.INVALID if ident.kind == Kind.INVALID else MemberOutcome.NO_SUCH_USER
            outcomes.append(MemberOutcome(ident.text, outcome))
            continue
        if user.pk in seen:
            first = seen[user.pk]
            outcomes.append(MemberOutcome(ident.text, first.outcome, first.username, first.full_name, first.moved_from))
            continue
        if user.pk in already:
            result = MemberOutcome(ident.text, MemberOutcome.ALREADY, user.username, user.get_full_name())
        elif user.pk in previous:
            result = MemberOutcome(ident.text, MemberOutcome.MOVED, user.username, user.get_full_name(), previous[user.pk])
        else:
            result = MemberOutcome(ident.text, MemberOutcome.ADDED, user.username, user.get_full_name())
        seen[user.pk] = result
        outcomes.append(result)
    return outcomes


@dataclass
class MembersAdded:
    outcomes: list[MemberOutcome]
    enrollments: dict[str, int]

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.outcome] = counts.get(o.outcome, 0) + 1
        return counts


def _add_decide(*, target: Target, resolved: list[tuple], lock: bool) -> tuple[set[int], dict[int, str]]:
    """Who among ``resolved`` is in the unit now, and the company or
    department each other person would leave: the reads that both the
    preview and the add decide from. With ``lock`` the people's rows are
    locked first: if another administrator moves the same person at the
    same moment, "moved from" must name the unit this update replaced, not
    one read before theirs. The user rows, not the placements: a person
    without a placement yet has no row to lock."""
    user_ids = sorted({u.pk for _, u in resolved if u is not None})
    if lock:
        list(User.objects.select_for_update().filter(pk__in=user_ids).order_by("pk").values_list("pk", flat=True))
    if target.unit is None or target.unit.kind not in SINGLE_KINDS:
        return set(target.members().filter(pk__in=user_ids).values_list("pk", flat=True)), {}
    current = dict(Placement.objects.filter(user_id__in=user_ids).values_list("user_id", f"{target.unit.kind}_id"))
    already = {pk for pk, unit_id in current.items() if unit_id == target.unit.pk}
    names = dict(OrgUnit.objects.filter(pk__in={u for u in current.values() if u}).values_list("pk", "name"))
    return already, {pk: names[unit_id] for pk, unit_id in current.items() if unit_id and unit_id != target.unit.pk}


def members_fingerprint(outcomes: list[MemberOutcome], *, email_students: bool) -> str:
    """A hash of each identifier's decided outcome (and old unit) and the options."""
    text = json.dumps([[o.identifier, o.outcome, o.moved_from] for o in outcomes] + [email_students])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class MembersPreview(MembersAdded):
    """What adding a list to a unit would do, with nothing written."""

    fingerprint: str = ""
    course_count: int = 0


class MembersPreviewStale(Exception):
    """The unit changed between the preview and its Confirm; nothing was written."""

    def __init__(self, preview: MembersPreview):
        super().__init__("The unit changed since the preview.")
        self.preview = preview


def unit_members_add_preview(*, target: Target, identifiers: str | list[str], email_students: bool = False) -> MembersPreview:
    """What ``unit_members_add_identifiers`` would do with this list, with
    nothing written: the same resolve, reads and ``member_outcomes`` as the
    add, without its locks. Enrollments are not computed person by person:
    the preview says in how many of the unit's courses the people added are
    enrolled (and that rules are applied)."""
    resolved = users_by_identifier(parse_identifiers(identifiers))
    already, previous = _add_decide(target=target, resolved=resolved, lock=False)
    outcomes = member_outcomes(resolved=resolved, already=already, previous=previous)
    return MembersPreview(outcomes=outcomes, enrollments={}, fingerprint=members_fingerprint(outcomes, email_students=email_students),
                          course_count=len(target.course_ids()))


@transaction.atomic
def unit_members_add_identifiers(*, target: Target, identifiers: str | list[str], actor: Actor, email_students: bool = False,
                                 expected_fingerprint: str | None = None) -> MembersAdded:
    """Add the people named by usernames or emails to a unit or group, with
    an outcome per identifier: added, already a member, moved from their old
    company or department (a person belongs to one of each), no such user
    (no active account) or invalid. Unknown identifiers do not stop the
    others from being added. Enrollments and rules follow as in unit_members_add.

    With ``expected_fingerprint`` (a preview's), the outcomes are decided
    again under the people's locks first and, unless they are the preview's,
    ``MembersPreviewStale`` carries the new preview and nothing is written."""
    resolved = users_by_identifier(parse_identifiers(identifiers))
    user_ids = sorted({u.pk for _, u in resolved if u is not None})
    single = target.unit is not None and target.unit.kind in SINGLE_KINDS
    already: set[int] = set()
    previous: dict[int, str] = {}
    if single or expected_fingerprint is not None:
        already, previous = _add_decide(target=target, resolved=resolved, lock=True)
    if expected_fingerprint is not None:
        outcomes = member_outcomes(resolved=resolved, already=already, previous=previous)
        fingerprint = members_fingerprint(outcomes, email_students=email_students)
        if fingerprint != expected_fingerprint:
            raise MembersPreviewStale(MembersPreview(outcomes=outcomes, enrollments={}, fingerprint=fingerprint,
                                                     course_count=len(target.course_ids())))
    # Everyone found is added, present members too: it is idempotent and
    # makes any enrollment of the unit's courses they miss.
    enrollments, joined = _members_add(target=target, users=[u for _, u in resolved if u is not None], actor=actor,
                                       email_students=email_students, source="admin")
    if not single:
        # Who was a member already is what the insert skipped, not what a read
        # before it saw: of two administrators adding the same person at once,
        # one is told "added", the other "already a member".
        already = set(user_ids) - joined
    outcomes = member_outcomes(resolved=resolved, already=already, previous=previous)
    return MembersAdded(outcomes=outcomes, enrollments=enrollments)


def unit_members_remove_preview(*, target: Target, user_ids: Iterable[int]) -> tuple[list, str]:
    """The members among ``user_ids`` that removing them would take out of
    the unit, by username, and a fingerprint of that set (nothing written)."""
    people = list(target.members().filter(pk__in=list(user_ids)).order_by("username"))
    return people, hashlib.sha256(json.dumps(sorted(u.pk for u in people)).encode()).hexdigest()


class RemovePreviewStale(Exception):
    """The unit's members among those chosen changed since the removal's preview; nothing was written."""

    def __init__(self, people: list, fingerprint: str):
        super().__init__("The unit's members changed since the preview.")
        self.people, self.fingerprint = people, fingerprint


@transaction.atomic
def unit_members_remove(*, target: Target, users: Iterable, actor: Actor, also_unenroll: bool = False, email_students: bool = False,
                        expected_fingerprint: str | None = None) -> dict[str, int]:
    """Take people out of a unit or group. Nobody is unenrolled unless
    ``also_unenroll``: then only from enrollments this unit made, where they
    no longer qualify otherwise. Rules are applied to the changed people.

    With ``expected_fingerprint`` (``unit_members_remove_preview``'s), the
    members among ``users`` are read again under their locks and, unless
    they are the preview's, ``RemovePreviewStale`` carries the new ones and
    nothing is written."""
    user_ids = sorted({u.pk for u in users if u is not None})
    if expected_fingerprint is not None:
        list(User.objects.select_for_update().filter(pk__in=user_ids).order_by("pk").values_list("pk", flat=True))
        people, fingerprint = unit_members_remove_preview(target=target, user_ids=user_ids)
        if fingerprint != expected_fingerprint:
            raise RemovePreviewStale(people, fingerprint)
    totals = {"enrolled": 0, "reactivated": 0, "unenrolled": 0}
    if not user_ids:
        return totals
    before = rules_snapshot(user_ids=user_ids)
    _leave(target, user_ids)
    operation_id = uuid.uuid4()  # one undo for every course and rule
    if also_unenroll:
        plan = Plan(origin=target.origin, label=target.label, source=Source.UNIT)
        for c in courses_in(target.course_ids()):
            cp = CoursePlan(course=c)
            cp.unenroll = plan_unenroll(course=c, origin=target.origin, users=User.objects.filter(pk__in=user_ids))
            plan.courses.append(cp)
        totals["unenrolled"] += plan_execute(plan=plan, actor=actor, email_students=email_students, operation_id=operation_id)["unenrolled"]
    for key, value in rules_reconcile(user_ids=user_ids, before=before, actor=actor, email_students=email_students,
                                      operation_id=operation_id).items():
        totals[key] += value
    return totals
