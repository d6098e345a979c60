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

from accounts.selectors import user_by_identifier
from courses.models import Course
from enrollment_site.lib.identifiers import Kind, parse_identifiers

from ..models import Allowance, Enrollment, EnrollmentAudit, Notification, State

# A story shows the latest changes and emails; a person with more is rare and
# says so ("showing the latest ...").
STORY_LIMIT = 500


def email_status_label(status: str) -> str:
    """How the story and the invitations table say an outbox row's status."""
    labels: dict[str, str] = {
        Notification.Status.PENDING: "queued",
        Notification.Status.SENDING: "queued",
        Notification.Status.SENT: "sent",
        Notification.Status.FAILED: "failed",
    }
    return labels.get(status, status)


@dataclass
class StoryEntry:
    """One change of the person's state, or (``audit`` None) an email no change claims."""

    when: datetime
    audit: EnrollmentAudit | None = None
    emails: list[Notification] = field(default_factory=list)


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
        return State(self.state).label

    @property
    def found(self) -> bool:
        return self.user is not None or bool(self.email)


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
