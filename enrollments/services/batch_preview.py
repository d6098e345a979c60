"""A batch's preview: what enrolling or unenrolling a list would do, with nothing written.

The preview is the batch itself without its write step: the same resolve, the
same reads (without the locks) and the same pure ``batch_decide`` as
``enrollment_batch_update``, so that it cannot disagree with the batch about
the rules. Its ``fingerprint`` is a hash of the decided per-identifier
outcomes and of the options; the confirmed batch decides again under its
locks and is applied only if its fingerprint is the preview's
(``preview_check``, called by ``enrollment_batch_update``). Otherwise the
course changed in between: ``PreviewStale`` carries the new preview, and
nothing is written.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from courses.models import Course, CourseRole
from enrollment_site.lib import lookups  # noqa: F401 (registers __any_of)
from enrollment_site.lib.identifiers import parse_identifiers

from ..models import PREVIEW_LABELS, Outcome, Source
from ..periods import PeriodRequest, period_for
from ..periods_asked import asked_json
from ..selectors import active_count
from .batch import _lock, _resolve, batch_period_check, check_identifier_count
from .batch_decide import ACTIONS, BatchChanges, BatchRequest, IdentifierResult, batch_decide


@dataclass
class PreviewGroup:
    outcome: str
    label: str
    results: list[IdentifierResult]

    @property
    def count(self) -> int:
        return len(self.results)


@dataclass
class BatchPreview:
    """What a batch would do: one result per distinct identifier (as the batch
    would report it), the number of emails it would send, the course team
    members it would unenroll (usernames), its ``fingerprint`` and, when it
    would take a capped course past its cap, ``over_cap`` (the cap, and the
    active enrollments there would be): the course team may go past it, so
    the preview warns rather than refuses."""

    action: str
    auto_enroll: bool
    email_students: bool
    results: list[IdentifierResult]
    emails: int
    fingerprint: str
    team_unenrolled: list[str] = field(default_factory=list)
    over_cap: tuple[int, int] | None = None
    asked: PeriodRequest = field(default_factory=PeriodRequest)

    @property
    def outcomes(self) -> list[str]:
        return [str(r.outcome) for r in self.results]

    @property
    def changes(self) -> int:
        """How many people the batch would change."""
        return sum(1 for r in self.results if r.outcome in CHANGES)

    @property
    def groups(self) -> list[PreviewGroup]:
        """The results by outcome, in the order the results page uses."""
        by_outcome: dict[str, list[IdentifierResult]] = {}
        for r in self.results:
            by_outcome.setdefault(str(r.outcome), []).append(r)
        return [PreviewGroup(str(o), str(PREVIEW_LABELS[o]), by_outcome[o]) for o in Outcome.ORDER if o in by_outcome]

    @property
    def summary(self) -> dict[str, int]:
        return dict(Counter(self.outcomes))


# A preview writes nothing, so it has no operation; the request type needs one.
_NO_OPERATION = uuid.UUID(int=0)

CHANGES = frozenset({
    Outcome.ENROLLED, Outcome.REACTIVATED, Outcome.ALLOWED_AUTO, Outcome.ALLOWED, Outcome.UNENROLLED, Outcome.ALLOWANCE_REMOVED,
})


class PreviewStale(Exception):
    """The course changed between a preview and its confirmation: ``preview``
    is what the batch would do now."""

    def __init__(self, preview: BatchPreview):
        super().__init__(_("The course changed since the preview."))
        self.preview = preview


def enrollment_batch_preview(
    *, course: Course, identifiers: str | list[str], action: str, auto_enroll: bool, email_students: bool,
    period: PeriodRequest | None = None,
) -> BatchPreview:
    """What ``enrollment_batch_update`` with these arguments would do now,
    with nothing written (no enrollment, allowance, audit or outbox row) and
    no lock taken. The outcomes are the batch's own (the same resolve and
    decide); a concurrent change may still make the batch differ, which its
    ``expected_fingerprint`` catches. Raises TooManyIdentifiers above the cap;
    the number of queries does not depend on the number of identifiers."""
    if action not in ACTIONS:
        raise ValidationError(_("Unknown action %(action)s; use 'enroll' or 'unenroll'.") % {"action": repr(action)})
    asked = batch_period_check(action=action, period=period)
    parsed = parse_identifiers(identifiers)
    check_identifier_count(len(parsed))
    now = timezone.now()
    request = BatchRequest(
        action=action, auto_enroll=auto_enroll, email_students=email_students, course_id=course.pk,
        default_mode=course.default_mode, source=Source.BATCH, reason="", operation_id=_NO_OPERATION,
        actor_id=None, now=now, period=period_for(course, asked, now=now), asked=asked,
    )
    resolved = _resolve(parsed)
    enrollments, allowances = _lock(course=course, resolved=resolved, for_update=False)
    changes = batch_decide(request=request, resolved=resolved, enrollments=enrollments, allowances=allowances)
    return _preview_of(course=course, request=request, changes=changes)


def preview_check(*, course: Course, request: BatchRequest, changes: BatchChanges, expected: str) -> None:
    """Raise PreviewStale (with the preview of ``changes``) unless the batch
    decided what the preview with fingerprint ``expected`` showed."""
    if batch_fingerprint(request, changes.results) != expected:
        raise PreviewStale(_preview_of(course=course, request=request, changes=changes))


def batch_fingerprint(request: BatchRequest, results: list[IdentifierResult]) -> str:
    """A hash of what a batch decides: its options (the period asked among
    them, so that a Confirm applies the period previewed) and each identifier's outcome."""
    return fingerprint_of(
        request.action, request.auto_enroll, request.email_students, ((r.identifier, str(r.outcome)) for r in results),
        period=asked_json(request.asked),
    )


def fingerprint_of(
    action: str, auto_enroll: bool, email_students: bool, outcomes: Iterable[tuple[str, str]], *, period: dict | None = None,
) -> str:
    """``batch_fingerprint`` of (identifier, outcome key) pairs, such as a stored preview's rows."""
    options = f"{action}|{auto_enroll:d}|{email_students:d}"
    if period:  # no period: the hash of a list without one, as before periods existed
        options += "|" + "|".join(f"{name}={value}" for name, value in sorted(period.items()))
    digest = hashlib.sha256(options.encode())
    for identifier, outcome in outcomes:
        digest.update(f"\n{identifier}\t{outcome}".encode())
    return digest.hexdigest()


def preview_differences(before: list[tuple[str, str]], after: BatchPreview) -> list[tuple[str, str, str]]:
    """(identifier, outcome label then, outcome label now) for each identifier
    whose outcome differs between an earlier preview (identifier, outcome key
    pairs) and ``after``."""
    now = {r.identifier: str(r.outcome) for r in after.results}
    return [
        (identifier, str(PREVIEW_LABELS.get(then, then)), str(PREVIEW_LABELS.get(now[identifier], now[identifier])))
        for identifier, then in before
        if identifier in now and now[identifier] != then
    ]


# How many changed people a message names.
CHANGES_LISTED = 10


def changes_listed(changed: list[tuple[str, str, str]]) -> str:
    """The first CHANGES_LISTED changes as a message lists them: "cy: will enroll → already enrolled; …"."""
    return "; ".join(f"{identifier}: {then} → {now}" for identifier, then, now in changed[:CHANGES_LISTED])


def changed_message(changed: list[tuple[str, str, str]], opening: str) -> str:
    """``opening`` and, for whom, what changed ("cy: will enroll → already enrolled"), the first 10 named."""
    listed = changes_listed(changed)
    more = len(changed) - CHANGES_LISTED
    return ngettext(
        "%(opening)s for %(n)s person (%(listed)s%(more)s).",
        "%(opening)s for %(n)s people (%(listed)s%(more)s).",
        len(changed),
    ) % {
        "opening": opening, "n": number_format(len(changed), force_grouping=True), "listed": listed,
        "more": _(" and %(n)s more") % {"n": number_format(more, force_grouping=True)} if more > 0 else "",
    }


def _preview_of(*, course: Course, request: BatchRequest, changes: BatchChanges) -> BatchPreview:
    unenrolled = {r.identifier for r in changes.results if r.outcome == Outcome.UNENROLLED}
    user_ids = sorted(user_id for user_id, identifier in changes.seen.items() if identifier in unenrolled)
    team = sorted(
        CourseRole.objects.filter(course=course, user_id__any_of=user_ids).values_list("user__username", flat=True)
    ) if user_ids else []
    return BatchPreview(
        action=request.action, auto_enroll=request.auto_enroll, email_students=request.email_students,
        results=changes.results, emails=len(changes.messages), fingerprint=batch_fingerprint(request, changes.results),
        team_unenrolled=team, over_cap=_over_cap(course, changes.results), asked=request.asked,
    )


def _over_cap(course: Course, results: list[IdentifierResult]) -> tuple[int, int] | None:
    # One read of the counters, and only for a capped course the batch would add people to.
    adding = sum(1 for r in results if r.outcome in (Outcome.ENROLLED, Outcome.REACTIVATED))
    if course.max_enrollments is None or not adding:
        return None
    after = active_count(course=course) + adding
    return (course.max_enrollments, after) if after > course.max_enrollments else None

