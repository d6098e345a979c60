"""Reads of codes for the codes pages, their exports and the admin.

A *scope* is where codes are managed from: one course's Codes tab, one group's
codes page, or the platform-wide page. Every query of a page goes through its
scope, so a code outside it is a 404 there."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _

from courses.models import Course
from enrollment_site.lib.keyset import Cursor, IdCursor
from organisations.models import Group

from .models import CodeBatch, CodeBatchCourse, CodeBatchGroup, EnrollmentCode, EnrollmentCodeQuerySet, Redemption, Status


@dataclass(frozen=True)
class Scope:
    kind: str  # "course", "group" or "all"
    course: Course | None = None
    group: Group | None = None

    @property
    def label(self) -> str:
        if self.course is not None:
            return self.course.display_name
        if self.group is not None:
            return self.group.name
        return _("all courses and groups")

    @property
    def slug(self) -> str:
        """A file-name-safe name for exports."""
        if self.course is not None:
            return f"{self.course.org}_{self.course.number}"
        if self.group is not None:
            return f"group{self.group.pk}"
        return "all"

    @property
    def page_url(self) -> str:
        return self.url("page")

    def url(self, name: str, **kwargs) -> str:
        """The URL of one of the codes views (page, export, deactivate, redemptions) in this scope."""
        if self.course is not None:
            if name == "page":
                return reverse("instructor_codes", kwargs={"course_key": self.course.key})
            return reverse(f"course_codes_{name}", kwargs={"course_key": self.course.key, **kwargs})
        if self.group is not None:
            return reverse(f"group_codes_{name}", kwargs={"group_id": self.group.pk, **kwargs})
        return reverse(f"all_codes_{name}", kwargs=kwargs)

    def batches(self) -> QuerySet[CodeBatch]:
        qs = CodeBatch.objects.all()
        if self.course is not None:
            qs = qs.filter(courses=self.course)
        elif self.group is not None:
            qs = qs.filter(groups=self.group)
        return qs.order_by("-created", "-id")

    def codes(self) -> EnrollmentCodeQuerySet:
        qs = EnrollmentCode.objects.all()
        if self.kind != "all":
            qs = qs.filter(batch__in=self.batches().values("pk"))
        return qs


# The batches the Codes table's Batch filter lists at once: the newest of the scope, so
# that the page costs the same with 10 batches or 10,000; a search finds the others.
BATCH_CHOICES = 20


@dataclass(frozen=True)
class BatchChoices:
    batches: list[CodeBatch]
    matched: int  # how many of ``batches`` are the newest (matching the search); the selected one may follow
    more: bool  # the scope (or the search) has more batches than those
    search: str = ""


def batch_choices(*, scope: Scope, search: str = "", selected: CodeBatch | None = None, limit: int = BATCH_CHOICES) -> BatchChoices:
    """The batches the Batch filter offers: the scope's newest ``limit``, or,
    with ``search``, its newest ``limit`` matching it (a batch number, a date
    as YYYY-MM-DD in the site's time zone, or part of a prefix); ``selected``
    (the batch filtered on, a batch of the scope) is added when not among
    them, so the filter in force always shows. One query of ``limit + 1`` rows,
    read in order from an index (the course's or group's links by their
    batches' ``created``; the batches' own for the platform-wide scope): the
    same work with 10 batches or 10,000 (a search reads on until it has them)."""
    search = search.strip()[:40]
    listed = _newest_batches(scope, search, limit + 1)
    more = len(listed) > limit
    listed = listed[:limit]
    matched = len(listed)
    if selected is not None and all(b.pk != selected.pk for b in listed):
        listed.append(selected)
    return BatchChoices(batches=listed, matched=matched, more=more, search=search)


def _newest_batches(scope: Scope, search: str, limit: int) -> list[CodeBatch]:
    links: QuerySet[CodeBatchCourse] | QuerySet[CodeBatchGroup]
    if scope.course is not None:
        links = CodeBatchCourse.objects.filter(course=scope.course)
    elif scope.group is not None:
        links = CodeBatchGroup.objects.filter(group=scope.group)
    else:
        return list(scope.batches().filter(_search_match(search))[:limit])
    # The link's created is its batch's: the order Scope.batches() gives, from the (target, created, batch) index.
    links = links.filter(_search_match(search, "codebatch__")).select_related("codebatch").order_by("-created", "-codebatch_id")
    return [link.codebatch for link in links[:limit]]


def _search_match(search: str, field: str = "") -> Q:
    """The batches a Batch filter search names (all of them for none), by the batch fields under ``field``."""
    if not search:
        return Q()
    match = Q(**{f"{field}prefix__icontains": search})
    if search.isdigit() and len(search) < 19:  # a batch number (within a bigint)
        match |= Q(**{f"{field}pk": int(search)})
    try:
        match |= Q(**{f"{field}created__date": date.fromisoformat(search)})
    except ValueError:
        pass
    return match


def codes_for_table(*, scope: Scope, batch_id: int | None = None, status: str = "") -> QuerySet[EnrollmentCode]:
    """The codes of a scope, newest first, optionally of one batch and one status,
    annotated with ``status_value`` and with their batches' targets prefetched."""
    qs = scope.codes()
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    if status in Status.values:
        qs = qs.filter_status(status)
    return qs.with_status().select_related("batch").prefetch_related("batch__courses", "batch__groups").order_by("-id")


# A status is derived per code, so a filtered count reads codes: up to here, and "more than" past it.
COUNT_LIMIT = 1000


@dataclass(frozen=True)
class CodeCount:
    value: int
    more: bool = False  # more than ``value`` (a status filter, counted up to COUNT_LIMIT)


def codes_count(*, scope: Scope, codes: QuerySet[EnrollmentCode], batch: CodeBatch | None = None, status: str = "") -> CodeCount:
    """How many codes the table of ``codes`` (the scope's, of ``batch`` and
    ``status`` if given) holds, at a cost that does not grow with them. Without a
    status: the batches' own ``count`` (each batch stores how many codes it made,
    and codes are never deleted), one small aggregate over the scope's batches,
    not a COUNT over its codes. With a status, which is derived per code: the
    codes counted up to COUNT_LIMIT, beyond which it is "more than" that."""
    if not status:
        if batch is not None:
            return CodeCount(batch.count)
        return CodeCount(scope.batches().order_by().aggregate(total=Sum("count"))["total"] or 0)
    counted = codes.order_by().values("pk")[: COUNT_LIMIT + 1].count()
    return CodeCount(min(counted, COUNT_LIMIT), more=counted > COUNT_LIMIT)


# An old ?page=N address further than this is sent to the oldest page rather than read that far.
LEGACY_PAGE_MAX = 100_000


def id_cursor_for_page(codes: QuerySet, *, page: str, size: int) -> IdCursor | None:
    """Where the ``page``-th page of ``size`` (1-based, newest first by id) of
    ``codes`` starts, for addresses bookmarked when the codes table was paged by
    number: None for the first page (or a page that is not a number), the oldest
    page for one past the end. One query, by OFFSET over the ids (an index-only
    read); only these old addresses pay it, and each only once, as they are
    redirected to the cursor."""
    try:
        number = int(page)
    except (TypeError, ValueError):
        return None
    if number <= 1:
        return None
    if number > LEGACY_PAGE_MAX:
        return IdCursor(0, back=True)
    start = (number - 1) * size
    anchor = list(codes.order_by("-id").values_list("id", flat=True)[start - 1 : start])
    return IdCursor(anchor[0]) if anchor else IdCursor(0, back=True)


def redemptions_cursor_for_page(redemptions: QuerySet[Redemption], *, page: str, size: int) -> Cursor | None:
    """``id_cursor_for_page`` for the redemptions of a code (newest first by
    (created, id)): the cursor after the last row before the page; None (the
    first page) for the first page, a page that is not a number or one past the end."""
    try:
        number = int(page)
    except (TypeError, ValueError):
        return None
    if not 1 < number <= LEGACY_PAGE_MAX:
        return None
    start = (number - 1) * size
    anchor = list(redemptions.order_by("-created", "-id").values_list("created", "id")[start - 1 : start])
    return Cursor(anchor[0][0], anchor[0][1]) if anchor else None


def code_in_scope(*, scope: Scope, code_id: int) -> EnrollmentCode:
    """The code if it belongs to the scope; Http404 otherwise."""
    return get_object_or_404(scope.codes().select_related("batch"), pk=code_id)


def redemptions_of(*, code: EnrollmentCode) -> QuerySet[Redemption]:
    return Redemption.objects.filter(code=code).select_related("user").order_by("-created", "-id")


def batch_targets(*, batch_ids) -> dict[int, tuple[list[str], list[str]]]:
    """For each batch (ids, or a ``values("batch_id")`` subquery), the display names
    of its courses and the names of its groups: two queries, for exports that
    must not query per row."""
    targets: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    through_courses = CodeBatch.courses.through.objects.filter(codebatch_id__in=batch_ids)
    for batch_id, name in through_courses.order_by("course__display_name").values_list("codebatch_id", "course__display_name"):
        targets[batch_id][0].append(name)
    through_groups = CodeBatch.groups.through.objects.filter(codebatch_id__in=batch_ids)
    for batch_id, name in through_groups.order_by("group__name").values_list("codebatch_id", "group__name"):
        targets[batch_id][1].append(name)
    return targets
