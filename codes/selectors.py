"""Reads of codes for the codes pages, their exports and the admin.

A *scope* is where codes are managed from: one course's Codes tab, one group's
codes page, or the platform-wide page. Every query of a page goes through its
scope, so a code outside it is a 404 there."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

from courses.models import Course
from organisations.models import Group

from .models import CodeBatch, EnrollmentCode, EnrollmentCodeQuerySet, Redemption, Status


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
        return "all courses and groups"

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


def codes_for_table(*, scope: Scope, batch_id: int | None = None, status: str = "") -> QuerySet[EnrollmentCode]:
    """The codes of a scope, newest first, optionally of one batch and one status,
    annotated with ``status_value`` and with their batches' targets prefetched."""
    qs = scope.codes()
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    if status in Status.values:
        qs = qs.filter_status(status)
    return qs.with_status().select_related("batch").prefetch_related("batch__courses", "batch__groups").order_by("-id")


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
