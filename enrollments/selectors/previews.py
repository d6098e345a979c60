"""Reads of kept Membership previews for their pages."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from courses.models import Course

from ..models import PREVIEW_LABELS, MembershipPreview, MembershipPreviewRow, Outcome


def membership_preview_for(*, course: Course, user, public_id) -> MembershipPreview | None:
    """The preview ``public_id`` of ``course`` made by ``user`` (by anyone
    with ``user=None``), or None; without its identifiers and rows."""
    previews: QuerySet[MembershipPreview] = MembershipPreview.objects.filter(course=course, public_id=public_id)
    if user is not None:
        previews = previews.filter(requester=user)
    return previews.select_related("confirmed_by", "batch_job").defer("identifiers").first()


def membership_preview_renewing(*, job, user) -> MembershipPreview | None:
    """The preview ``user`` may confirm instead of the one whose batch ``job``
    found the course changed, if any."""
    return MembershipPreview.objects.filter(replaces__batch_job=job, requester=user, confirmed_at__isnull=True).only("public_id").first()


@dataclass
class StoredGroup:
    outcome: str
    label: str
    count: int
    results: list[MembershipPreviewRow]
    page: Page | None = None


@dataclass
class StoredPreview:
    """A worker's preview as its page shows it: what ``BatchPreview`` offers
    the template, with each outcome's first rows (or one page of them)."""

    action: str
    auto_enroll: bool
    email_students: bool
    emails: int
    changes: int
    team_unenrolled: list[str]
    over_cap: list[int] | None
    groups: list[StoredGroup] = field(default_factory=list)


def stored_preview(pending: MembershipPreview, *, first: int, show: str = "", page=None, per_page: int = 100) -> StoredPreview:
    """``pending``'s counts per outcome and the first ``first`` rows of each
    (one query, whatever the size), and with ``show`` one page of that
    outcome's rows (two more)."""
    rows = MembershipPreviewRow.objects.filter(preview=pending).only("identifier", "outcome", "username", "email", "note")
    firsts: dict[str, list[MembershipPreviewRow]] = {}
    ranked = rows.annotate(rank=Window(RowNumber(), partition_by=[F("outcome")], order_by=F("position").asc())).filter(rank__lte=first)
    for row in ranked.order_by("position"):
        firsts.setdefault(row.outcome, []).append(row)
    groups = []
    for outcome in Outcome.ORDER:
        count = pending.summary.get(str(outcome), 0)
        if not count:
            continue
        group = StoredGroup(str(outcome), str(PREVIEW_LABELS[outcome]), count, firsts.get(str(outcome), []))
        if show == str(outcome):
            group.page = Paginator(rows.filter(outcome=show).order_by("position"), per_page).get_page(page)
            group.results = list(group.page.object_list)
        groups.append(group)
    return StoredPreview(
        action=pending.action, auto_enroll=pending.auto_enroll, email_students=pending.email_students, emails=pending.emails,
        changes=pending.changes, team_unenrolled=pending.team_unenrolled, over_cap=pending.over_cap, groups=groups,
    )
