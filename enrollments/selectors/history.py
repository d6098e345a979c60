"""A learner's story in one course: their state now and every change from the
audit trail, each with the emails sent about it.

Anyone can be looked up, by username or email, enrolled or not: an address
without an account gets its invitation history. Emails are matched to the
change they announce by the course, the recipient's address and the
operation both were written in (a batch writes its audit rows and outbox rows
under one ``operation_id``); an email no change claims (an invitation resent,
say) is listed on its own. A story costs six queries at most, whatever the
size of the course or of the person's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from accounts.selectors import user_by_identifier
from courses.models import Course
from enrollment_site.lib.identifiers import Kind, parse_identifiers

from ..models import Allowance, Enrollment, EnrollmentAudit, Notification, Source, State

# A story shows the latest changes and emails; a person with more is rare and
# says so ("showing the latest ...").
STORY_LIMIT = 500


def email_status_label(status: str) -> str:
    """An outbox row's status as the history API says it (English words, a contract); pages use ``email_status_shown``."""
    labels: dict[str, str] = {
        Notification.Status.PENDING: "queued",
        Notification.Status.SENDING: "queued",
        Notification.Status.SENT: "sent",
        Notification.Status.FAILED: "failed",
    }
    return labels.get(status, status)


def email_status_shown(status: str) -> str:
    """``email_status_label`` as pages show it, in the reader's language (the history API keeps the English word)."""
    label = email_status_label(status)
    shown = {"queued": pgettext("email status", "queued"), "sent": pgettext("email status", "sent"), "failed": pgettext("email status", "failed")}
    return shown.get(label, label)


@dataclass
class StoryEntry:
    """One change of the person's state, or (``audit`` None) an email no change claims."""

    when: datetime
    audit: EnrollmentAudit | None = None
    emails: list[Notification] = field(default_factory=list)


@dataclass
class PeriodLine:
    """One access period in a learner's story: its bounds and how it ended
    ("" while it runs)."""

    access_from: datetime | None
    access_until: datetime | None
    ended: str = ""
    extended: int = 0  # how many times its end moved later


def period_lines(audits: list[EnrollmentAudit], enrollment: Enrollment | None, now: datetime) -> list[PeriodLine]:
    """The periods ``audits`` (any order) record, oldest first: a row that
    enrolls with a period opens one (or moves the end of the one running: an
    extension), an unenroll or an expiry ends it. Rows recording the state only
    leave the period as it was. The enrollment's own period is the last line
    when no row recorded it (given when it was made, say)."""
    lines: list[PeriodLine] = []
    running: PeriodLine | None = None
    for a in sorted(audits, key=lambda a: (a.created, a.pk)):
        # A period removed (an undone expiry gives the access back with no end) is recorded too: before set, after none.
        recorded = any(v is not None for v in (a.access_from_after, a.access_until_after, a.access_from_before, a.access_until_before))
        if a.state_after == State.ENROLLED and recorded:
            listed = bool(lines) and (lines[-1].access_from, lines[-1].access_until) == (a.access_from_before, a.access_until_before)
            if running is None and not listed and (a.access_from_before is not None or a.access_until_before is not None):
                # A period no earlier row recorded (given before periods were audited), running or ended;
                # one an earlier row ended (an unenroll, an expiry) is listed already.
                before = PeriodLine(a.access_from_before, a.access_until_before)
                lines.append(before)
                if a.state_before == State.ENROLLED and (before.access_until is None or before.access_until > a.created):
                    running = before
                else:
                    before.ended = _("ended")
            if running is not None and running.access_from == a.access_from_after:
                if a.access_until_after != running.access_until:
                    running.extended += 1
                    running.access_until = a.access_until_after
                continue
            if running is not None:
                running.ended = _("replaced by a new period")
            running = PeriodLine(a.access_from_after, a.access_until_after)
            lines.append(running)
        elif a.state_before == State.ENROLLED and a.state_after != State.ENROLLED and running is not None:
            running.ended = _("ended by expiry") if a.source == Source.EXPIRY else _("ended by unenrolling (%(source)s)") % {"source": a.get_source_display()}
            running = None
    if enrollment is not None and (enrollment.access_from or enrollment.access_until):
        if running is None or (running.access_from, running.access_until) != (enrollment.access_from, enrollment.access_until):
            if running is not None and not running.ended:
                running.ended = _("replaced by a new period")
            running = PeriodLine(enrollment.access_from, enrollment.access_until)
            lines.append(running)
    if running is not None and not running.ended:
        if running.access_until is not None and running.access_until <= now:
            running.ended = _("ended (not yet ended by the expiry task)") if enrollment is not None and enrollment.is_active else _("ended")
        elif enrollment is not None and not enrollment.is_active:
            running.ended = _("not enrolled")
        elif running.access_from is not None and running.access_from > now:
            running.ended = _("not started yet")
        else:
            running.ended = _("still current")
    return lines


@dataclass
class LearnerStory:
    who: str  # as typed
    valid: bool  # a username or a well-formed email
    user: object | None  # the account, if any (also an inactive one)
    email: str  # the address the story is about ("" for an unknown username)
    enrollment: Enrollment | None
    allowance: Allowance | None
    entries: list[StoryEntry]
    truncated: bool

    @property
    def state(self) -> str:
        """The person's state in the course now, as the audit trail names states."""
        if self.enrollment is not None:
            return State.ENROLLED if self.enrollment.is_active else State.UNENROLLED
        if self.allowance is not None and self.allowance.used_at is None:
            return State.ALLOWED_AUTO if self.allowance.auto_enroll else State.ALLOWED
        return State.NONE

    @property
    def state_label(self) -> str:
        return str(State(self.state).label)

    @property
    def found(self) -> bool:
        return self.user is not None or bool(self.email)

    @property
    def periods(self) -> list[PeriodLine]:
        """The access periods the loaded history records, oldest first (``period_lines``)."""
        return period_lines([e.audit for e in self.entries if e.audit is not None], self.enrollment, timezone.now())


def learner_story(*, course: Course, who: str, limit: int = STORY_LIMIT) -> LearnerStory:
    """The story of the person ``who`` names (a username or an email, any case;
    surrounding spaces ignored) in ``course``: the account (active or not),
    their enrollment and allowance rows, and their changes newest first with the
    emails about each. An unknown username gives an empty story with
    ``user`` None and no email; an unknown address gives its invitation
    history. Six queries at most."""
    who = (who or "").strip()
    parsed = parse_identifiers([who]) if who else []
    ident = parsed[0] if len(parsed) == 1 else None
    if ident is None or ident.kind == Kind.INVALID:
        return LearnerStory(who, False, None, "", None, None, [], False)
    user = user_by_identifier(who, active_only=False)
    if user is None and ident.kind == Kind.USERNAME:
        return LearnerStory(who, True, None, "", None, None, [], False)
    email = user.email if user is not None else ident.text
    email_key = user.email_key if user is not None else ident.key

    enrollment = Enrollment.objects.filter(course=course, user=user).first() if user is not None else None
    allowance = Allowance.objects.filter(course=course, email_key=email_key).select_related("created_by").first()

    # Rows name a person by account, or (an invitation, or an account not yet
    # resolved) by the username or address typed: both, through their indexes.
    keys = {email_key} | ({user.username.lower()} if user is not None else set())
    match = Q(identifier_key__in=keys)
    if user is not None:
        match |= Q(user_id=user.pk)
    audits = list(
        EnrollmentAudit.objects.filter(course=course)
        .annotate(identifier_key=Lower("identifier"))
        .filter(match)
        .select_related("actor")
        .order_by("-created", "-id")[: limit + 1]
    )
    recipients = {email_key} | {a.identifier_key for a in audits if "@" in a.identifier_key}
    notes = list(
        Notification.objects.filter(course=course, recipient_key__in=recipients)
        .defer("body")
        .order_by("-created", "-id")[: limit + 1]
    )
    truncated = len(audits) > limit or len(notes) > limit
    audits, notes = audits[:limit], notes[:limit]

    entries = [StoryEntry(when=a.created, audit=a) for a in audits]
    by_operation = {a.operation_id: entry for a, entry in zip(audits, entries, strict=True) if a.operation_id is not None}
    for note in notes:
        entry = by_operation.get(note.operation_id)
        if entry is not None:
            entry.emails.append(note)
        else:
            entries.append(StoryEntry(when=note.created, emails=[note]))
    entries.sort(key=lambda e: (e.when, e.audit.pk if e.audit else 0), reverse=True)
    return LearnerStory(who, True, user, email, enrollment, allowance, entries, truncated)
