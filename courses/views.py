from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.rules import is_platform_admin

from .forms import ChartRangeForm, CourseForm, TeamMemberAddForm
from .models import Course
from .rules import can_manage_course, can_manage_course_team
from .selectors import course_catalog, course_for_team_admin, course_for_team_member, course_team
from .services import course_create, course_team_add, course_team_remove

User = get_user_model()


def catalog(request):
    from enrollments.selectors import self_enrollment_by_course

    courses = list(course_catalog())
    decisions = self_enrollment_by_course(user=request.user, courses=courses)
    rows = [(course, decisions[course.pk]) for course in courses]
    return render(request, "courses/catalog.html", {"rows": rows, "can_create": is_platform_admin(request.user)})


@login_required
def course_new(request):
    if not is_platform_admin(request.user):
        raise PermissionDenied("Only platform administrators create courses.")
    form = CourseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        course = course_create(actor=request.user, **form.cleaned_data)
        messages.success(request, f"Course {course.key} created; you are its admin.")
        return redirect("course_detail", course_key=course.key)
    return render(request, "courses/course_form.html", {"form": form})


def course_detail(request, course_key):
    course = get_object_or_404(Course, key=course_key)
    context = {"course": course, "can_manage": can_manage_course(request.user, course)}
    context.update(_learner_context(request, course))
    return render(request, "courses/course_detail.html", context)


def _learner_context(request, course):
    from enrollments.selectors import self_enrollment_for

    return self_enrollment_for(user=request.user, course=course)


@login_required
def instructor_dashboard(request, course_key):
    course_for_team_member(request, course_key)
    return redirect("instructor_info", course_key=course_key)


def _dashboard_context(request, course, tab):
    return {
        "course": course,
        "tab": tab,
        "can_manage_team": can_manage_course_team(request.user, course),
    }


@login_required
def instructor_info(request, course_key):
    from enrollments.selectors import enrollment_counts, enrollments_over_time

    course = course_for_team_member(request, course_key)
    period = ChartRangeForm(request.GET)
    context = _dashboard_context(request, course, "info")
    context["counts"] = enrollment_counts(course=course)
    context["timeline"] = enrollments_over_time(course=course, days=period.days())
    context["range"] = period.chosen()
    context["ranges"] = [(key, label) for key, (label, _) in ChartRangeForm.RANGES.items()]
    return render(request, "courses/instructor/info.html", context)


@login_required
def instructor_membership(request, course_key):
    course = course_for_team_member(request, course_key)
    return instructor_membership_render(request, course)


def instructor_membership_render(request, course, *, form=None, result=None, status=200):
    """The Membership tab: batch enrollment (with its results) and the course team."""
    from enrollments.views import membership_context

    context = _dashboard_context(request, course, "membership")
    context["team"] = course_team(course=course)
    context["team_form"] = TeamMemberAddForm()
    context.update(membership_context(request, course, form=form, result=result))
    return render(request, "courses/instructor/membership.html", context, status=status)


@login_required
def instructor_data(request, course_key):
    """The Data download tab: report buttons, pending tasks and finished report files."""
    from reports.views import data_page

    course = course_for_team_member(request, course_key)
    return data_page(request, course, context=_dashboard_context(request, course, "data"))


@login_required
def instructor_codes(request, course_key):
    """The Codes tab: generate codes for this course, and the table of its codes."""
    from codes.selectors import Scope
    from codes.views import codes_page

    course = course_for_team_member(request, course_key)
    return codes_page(
        request, Scope("course", course=course), template="courses/instructor/codes.html", context=_dashboard_context(request, course, "codes")
    )


@login_required
@require_POST
def team_add(request, course_key):
    course = course_for_team_admin(request, course_key)
    form = TeamMemberAddForm(request.POST)
    if form.is_valid():
        user = form.cleaned_data["user"]
        try:
            course_team_add(course=course, user=user, role=form.cleaned_data["role"], actor=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{user.username} is now {form.cleaned_data['role']} of this course.")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("instructor_membership", course_key=course.key)


@login_required
@require_POST
def team_remove(request, course_key, user_id):
    course = course_for_team_admin(request, course_key)
    user = get_object_or_404(User, pk=user_id)
    try:
        course_team_remove(course=course, user=user, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{user.username} was removed from the course team.")
    return redirect("instructor_membership", course_key=course.key)
