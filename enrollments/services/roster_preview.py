"""A learners-table bulk action's preview: what it would do to each chosen row, with nothing written.

As the batch's preview is the batch without its write step, this is
``roster_apply`` without its writes: the same validated request, the same
reads (without the locks) and the same pure ``roster_decide``, so that it
cannot disagree with the action about the rules. Its ``fingerprint`` hashes
the options and each row's outcome; ``roster_apply`` with
``expected_fingerprint`` decides again under its locks and writes only if the
fingerprint is the same (``RosterPreviewStale`` otherwise, nothing written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from courses.models import Cohort, Course, CourseRole
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)

from ..models import RosterAction
from .roster_decide import (
    CHANGED,
    ENDS_LATER,
    EXTENDED,
    NO_END,
    NOT_ENROLLED,
    REACTIVATED,
    REFUSALS_LISTED,
    REFUSED,
    UNCHANGED,
    RosterChanges,
    RosterRequest,
    RosterRow,
)

# Names shown per outcome; the rest are counted.
NAMED = 10


class RosterPreviewStale(Exception):
    """The chosen rows changed between the preview and its confirmation: nothing was written."""

    def __init__(self):
        super().__init__(_("The learners changed since the preview."))


@dataclass
class RosterGroup:
    """The rows with one outcome: how the preview says it, how many, the
    first few usernames, and every username when the preview was asked to
    show this outcome in full (``everyone``, None otherwise)."""

    key: str
    label: str
    count: int = 0
    names: list[str] = field(default_factory=list)
    everyone: list[str] | None = None


@dataclass
class RosterPreview:
    """What a bulk action would do: ``groups`` by outcome (changes first), the
    emails it would send, the invitations it would withdraw, the course team
    members it would change (usernames), the refusals (which stop the whole
    action in the request) and the ``fingerprint`` Confirm carries."""

    action: str
    count: int
    groups: list[RosterGroup]
    changes: int
    emails: int
    invitations_withdrawn: int
    team: list[str]
    refused: list[str]
    refused_count: int
    fingerprint: str


def outcome_label(request: RosterRequest, key: str) -> str:
    """How the preview says an outcome key of ``RosterChanges.outcomes``, in the active language."""
    kind, _sep, was = key.partition(":")
    if kind == REFUSED:
        return _("cannot take this action")
    if request.action == RosterAction.EXTEND:
        if request.extend_until is not None:
            day = date_format(timezone.localtime(request.extend_until), "j M Y")
            extended = _("will be extended until %(day)s") % {"day": day}
            again = _("period ended: will be active again, until %(day)s") % {"day": day}
        else:
            days = ngettext("%(n)s day", "%(n)s days", request.extend_days or 0) % {"n": request.extend_days}
            extended = _("will be extended by %(days)s") % {"days": days}
            again = _("period ended: will be active again, for %(days)s") % {"days": days}
        return {
            EXTENDED: extended,
            REACTIVATED: again,
            NOT_ENROLLED: _("not enrolled (unenrolled): left alone"),
            NO_END: _("no end of access: left alone"),
            ENDS_LATER: _("already ends on or after that: left alone"),
        }[was]
    to = request.mode if request.action == RosterAction.CHANGE_MODE else request.cohort_name or _("no cohort")
    if kind == UNCHANGED:
        return {
            RosterAction.UNENROLL: _("already unenrolled"), RosterAction.ENROLL_AGAIN: _("already enrolled"),
            RosterAction.CHANGE_MODE: _("already %(mode)s") % {"mode": to}, RosterAction.MOVE_COHORT: _("already in %(cohort)s") % {"cohort": to},
        }[RosterAction(request.action)]
    return {
        RosterAction.UNENROLL: _("will be unenrolled"), RosterAction.ENROLL_AGAIN: _("will be enrolled again"),
        RosterAction.CHANGE_MODE: _("mode %(before)s → %(after)s") % {"before": was, "after": to},
        RosterAction.MOVE_COHORT: _("cohort %(before)s → %(after)s") % {"before": was or _("none"), "after": to},
    }[RosterAction(request.action)]


def roster_fingerprint(request: RosterRequest, outcomes: Iterable[tuple[int, str]]) -> str:
    """A hash of what an action decides: its options and each row's outcome (by enrollment id)."""
    extend = f"{request.extend_days}|{request.extend_until.isoformat() if request.extend_until else ''}"
    digest = hashlib.sha256(f"{request.action}|{request.mode}|{request.cohort_id}|{request.email_students:d}|{extend}".encode())
    for enrollment_id, key in sorted(outcomes):
        digest.update(f"\n{enrollment_id}\t{key}".encode())
    return digest.hexdigest()


def preview_of(*, course: Course, request: RosterRequest, decided: list[tuple[list[RosterRow], RosterChanges]], missing: list[str],
               missing_count: int, show: str = "") -> RosterPreview:
    """The preview of chunks decided (rows read, changes), and of ids not
    found; the outcome ``show`` with every username."""
    groups: dict[str, RosterGroup] = {}
    outcomes: list[tuple[int, str]] = []
    changed_users: list[int] = []
    emails = withdrawn = 0
    refused = list(missing)
    refused_count = missing_count
    for _rows, changes in decided:
        emails += len(changes.batch.messages)
        withdrawn += len(changes.batch.allowance_keys_to_delete)
        refused += changes.refused
        refused_count += len(changes.refused)
        for row, key in changes.outcomes:
            outcomes.append((row.enrollment_id, key))
            group = groups.setdefault(key, RosterGroup(key, outcome_label(request, key), everyone=[] if key == show else None))
            group.count += 1
            if len(group.names) < NAMED:
                group.names.append(row.username)
            if group.everyone is not None:
                # The rows are in memory already: listing one outcome in full costs no query.
                group.everyone.append(row.username)
            if key.startswith(CHANGED):
                changed_users.append(row.user_id)
    # Team members changed are called out: unenrolling one takes away their learner's view of the course too.
    team = sorted(
        CourseRole.objects.filter(course=course, user_id__any_of=sorted(changed_users)).values_list("user__username", flat=True).distinct()
    ) if changed_users else []
    rank = {CHANGED: 0, UNCHANGED: 1, REFUSED: 2}
    ordered = sorted(groups.values(), key=lambda g: (rank[g.key.partition(":")[0]], g.label))
    return RosterPreview(
        action=request.action, count=len(outcomes) + missing_count, groups=ordered,
        changes=sum(g.count for g in ordered if g.key.startswith(CHANGED)), emails=emails, invitations_withdrawn=withdrawn,
        team=team, refused=refused[:REFUSALS_LISTED], refused_count=refused_count,
        fingerprint=roster_fingerprint(request, outcomes + [(0, f"missing:{missing_count}")]),
    )


def roster_preview(*, course: Course, action: str, enrollment_ids: Iterable[int], mode: str = "", cohort: Cohort | None = None,
                   email_students: bool = True, extend_days: int | None = None, extend_until: datetime | None = None,
                   show: str = "") -> RosterPreview:
    """What ``roster_apply`` with these arguments would do now, with nothing
    written and no lock taken: each row's outcome grouped (the first
    ``NAMED`` usernames of each, and all of the outcome key ``show``'s),
    emails, invitations withdrawn, course team members changed and refusals. ValidationError as ``roster_apply``. A fixed
    number of queries per ``ROSTER_CHUNK`` rows."""
    from .roster import ROSTER_CHUNK, _distinct_ids, _lock, _not_here, _request
    from .roster_decide import roster_decide

    ids = _distinct_ids(enrollment_ids)
    request = _request(actor=None, course=course, action=action, mode=mode, cohort=cohort, reason="", email_students=email_students,
                       extend_days=extend_days, extend_until=extend_until)
    decided = []
    missing: list[str] = []
    missing_count = 0
    for start in range(0, len(ids), ROSTER_CHUNK):
        chunk = ids[start : start + ROSTER_CHUNK]
        rows = _lock(course=course, ids=chunk, action=action, for_update=False)
        decided.append((rows, roster_decide(request=request, rows=rows)))
        if len(rows) != len(chunk):
            found = {row.enrollment_id for row in rows}
            gone = [i for i in chunk if i not in found]
            missing += [_not_here(i) for i in gone[: REFUSALS_LISTED - len(missing)]]
            missing_count += len(gone)
    return preview_of(course=course, request=request, decided=decided, missing=missing, missing_count=missing_count, show=show)
