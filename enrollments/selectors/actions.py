"""Reads for the learners table's actions: one row to confirm, the jobs of large actions and of large undos."""

from dataclasses import dataclass

from django.shortcuts import get_object_or_404

from courses.models import CohortMembership, Course

from ..models import Enrollment, RosterJob, UndoJob


@dataclass(frozen=True)
class RosterRowView:
    """One enrollment as its confirm page shows it."""

    enrollment: Enrollment
    cohort: str  # "" for no cohort

    @property
    def user(self):
        return self.enrollment.user


def roster_row_for(*, course: Course, enrollment_id: int) -> RosterRowView:
    """The course's enrollment with this id, with its learner and cohort.
    Http404 for an id that is not the course's, so that another course's rows
    cannot be told apart from missing ones. Two queries."""
    enrollment = get_object_or_404(
        Enrollment.objects.select_related("user").only(
            "id", "course_id", "is_active", "mode", "created", "user__username", "user__email", "user__first_name", "user__last_name", "user__is_active",
        ),
        course=course, pk=enrollment_id,
    )
    cohort = CohortMembership.objects.filter(course=course, user_id=enrollment.user_id).values_list("cohort__name", flat=True).first()
    return RosterRowView(enrollment=enrollment, cohort=cohort or "")


def roster_jobs_of(*, course: Course):
    """The course's learners-table jobs, without the ids they carry for their worker."""
    return RosterJob.objects.filter(course=course).select_related("requester").defer("enrollment_ids")


def roster_job_for(*, course: Course, public_id) -> RosterJob:
    """The course's job with this public id; Http404 for another course's."""
    return get_object_or_404(roster_jobs_of(course=course), public_id=public_id)


def undo_job_for(*, course: Course, public_id) -> UndoJob:
    """The course's undo job with this public id, with its requester; Http404
    for another course's, so that its ids cannot be told apart from missing ones."""
    return get_object_or_404(UndoJob.objects.filter(course=course).select_related("requester"), public_id=public_id)
