from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, ProtectedError, Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from courses.selectors import course_for_team_member
from enrollments.models import Source

from . import imports
from .forms import (
    AssignForm,
    CoursesForm,
    GroupForm,
    ImportTemplateForm,
    ImportUploadForm,
    MembersAddForm,
    MembersRemoveForm,
    ProfileForm,
    RuleForm,
    TeamEnrollForm,
    UnitForm,
    UnlinkForm,
    focus_first_error,
)
from .models import UNIT_KIND_PLURALS, EnrollmentRule, Group, OrgImport, OrgJob, OrgUnit, UnitKind
from .rules import groups_led_by, is_manager, team_reports
from .selectors import Target, org_admin_required, user_enrollments
from .services import (
    assignment_apply,
    assignment_link,
    assignment_plan,
    assignment_unlink,
    assignment_unlink_preview,
    org_job_create,
    org_jobs_fail_stale,
    rule_apply,
    rule_plan,
    rule_preview,
    rule_save,
    team_enroll,
    unit_members_add_identifiers,
    unit_members_remove,
    unit_remove,
    unit_save,
    user_enroll_courses,
    user_profile_update,
)
from .texts import count_text, enrollments_changed_text, enrollments_made_text, job_summary_text, members_added_text

User = get_user_model()


@login_required
def group_list(request):
    """The groups the user leads (all for platform admins), with links to their codes pages."""
    groups = groups_led_by(user=request.user).annotate(member_count=Count("memberships")).prefetch_related("courses")
    return render(request, "organisations/group_list.html", {"groups": groups})


# --- /organisation/: platform administrators only ------------------------------

def _admin_view(view):
    """Log in, then platform administrators only (403 for everyone else)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        org_admin_required(request)
        return view(request, *args, **kwargs)

    return wrapper


# The Members tab lists at most this many outcomes of one add (the summary counts everyone).
OUTCOMES_SHOWN = 1000


def sync_limit() -> int:
    return getattr(settings, "ORGANISATION_SYNC_LIMIT", 5000)




def _units_of(kind: str):
    if kind == UnitKind.GROUP:
        return Group.objects.annotate(member_count=Count("memberships", distinct=True)).order_by("name", "id")
    units = OrgUnit.objects.filter(kind=kind)
    if kind in (UnitKind.COMPANY, UnitKind.DEPARTMENT):
        return units.annotate(member_count=Count(f"{kind}_users", distinct=True))
    return units.annotate(member_count=Count("memberships", distinct=True))


@_admin_view
def unit_list(request):
    kind = request.GET.get("kind", UnitKind.COMPANY)
    if kind not in UnitKind.values:
        raise Http404
    return render(
        request, "organisations/unit_list.html",
        {"kind": kind, "kind_label": UnitKind(kind).label, "kind_plural": UNIT_KIND_PLURALS[UnitKind(kind)], "units": _units_of(kind)},
    )


def _unit_form(kind, data=None, instance=None):
    return (GroupForm if kind == UnitKind.GROUP else UnitForm)(data, instance=instance)


@_admin_view
def unit_create(request, kind):
    if kind not in UnitKind.values:
        raise Http404
    form = _unit_form(kind, request.POST or None)
    if request.method == "POST" and form.is_valid():
        obj = form.save(commit=False)
        if kind != UnitKind.GROUP:
            obj.kind = kind
        try:
            obj.validate_constraints()
        except ValidationError:
            form.add_error("name", f"A {UnitKind(kind).label.lower()} with this name exists already.")
        else:
            unit_save(obj=obj)
            messages.success(request, f"{UnitKind(kind).label} {obj.name} created.")
            return redirect("org_unit_assign", kind=kind, pk=obj.pk)
    return render(request, "organisations/unit_form.html", {"form": form, "kind": kind, "kind_label": UnitKind(kind).label})


@_admin_view
def unit_edit(request, kind, pk):
    target = Target.parse(kind, pk)
    form = _unit_form(kind, request.POST or None, instance=target.obj)
    if request.method == "POST" and form.is_valid():
        try:
            form.instance.validate_constraints()
        except ValidationError:
            form.add_error("name", "Another unit of this kind has this name.")
        else:
            unit_save(obj=form.save(commit=False))
            messages.success(request, "Saved.")
            return redirect("org_unit_edit", kind=kind, pk=pk)
    return render(request, "organisations/unit_form.html", {"form": form, "target": target, "kind": kind, "kind_label": UnitKind(kind).label, "tab": "edit"})


@_admin_view
@require_POST
def unit_delete(request, kind, pk):
    target = Target.parse(kind, pk)
    try:
        unit_remove(obj=target.obj)
    except ProtectedError:
        messages.error(request, f"{target.obj.name} is named by an enrollment rule; change the rule first.")
        return redirect("org_unit_edit", kind=kind, pk=pk)
    messages.success(request, f"{target.obj.name} deleted. Nobody was unenrolled.")
    return redirect(f"{reverse('org_unit_list')}?kind={kind}")


@_admin_view
def unit_members(request, kind, pk):
    target = Target.parse(kind, pk)
    add_form = MembersAddForm(request.POST if request.POST.get("action") == "add" else None)
    remove_form = MembersRemoveForm(request.POST if request.POST.get("action") == "remove" else None)
    remove_form.fields["users"].queryset = target.members()
    session_key = f"org_members_added:{kind}:{pk}"
    if request.method == "POST":
        if add_form.is_bound and add_form.is_valid():
            added = unit_members_add_identifiers(target=target, identifiers=add_form.cleaned_data["identifiers"], actor=request.user,
                                                 email_students=add_form.cleaned_data["email_students"])
            # Post/Redirect/Get: the per-person outcomes wait in the session for the next GET of this page, once.
            request.session[session_key] = {
                "outcomes": [o.as_dict() for o in added.outcomes[:OUTCOMES_SHOWN]], "total": len(added.outcomes),
            }
            made = added.enrollments["enrolled"] + added.enrollments["reactivated"]
            messages.success(request, members_added_text(added.counts, kind_label=UnitKind(kind).label.lower(), enrollments_made=made))
            return redirect(reverse("org_unit_members", args=[kind, pk]) + "#add-results")
        if remove_form.is_bound and remove_form.is_valid():
            removed = remove_form.cleaned_data["users"]
            done = unit_members_remove(target=target, users=removed, actor=request.user,
                                       also_unenroll=remove_form.cleaned_data["also_unenroll"])
            messages.success(request, count_text(len(removed), "%(count)s member removed", "%(count)s members removed") + f"; {done['unenrolled']:,} unenrolled.")
            return redirect("org_unit_members", kind=kind, pk=pk)
        focus_first_error(add_form)
    page = Paginator(target.members().order_by("username").only("id", "username", "email", "first_name", "last_name"), 100).get_page(request.GET.get("page"))
    return render(request, "organisations/unit_members.html", {
        "target": target, "kind": kind, "kind_label": UnitKind(kind).label, "tab": "members", "page": page,
        "add_form": add_form, "remove_form": remove_form, "added": request.session.pop(session_key, None) if request.method == "GET" else None,
    })


def _job_or_inline(request, *, total: int, kind: str, payload: dict, run):
    """Small work runs in the request; above the limit it becomes a job with a progress bar."""
    if total > sync_limit():
        job = org_job_create(kind=kind, payload=payload, total=total, actor=request.user)
        messages.info(request, count_text(total, "%(count)s enrollment change is running in the background.",
                                          "%(count)s enrollment changes are running in the background."))
        return job
    done = run()
    messages.success(request, f"Done: {job_summary_text(done)}")
    return None


@_admin_view
def unit_assign(request, kind, pk):
    target = Target.parse(kind, pk)
    form = AssignForm(request.POST if request.POST.get("action") in ("preview", "confirm") else None)
    plans, unlink_plans, unlinking, job = None, None, None, None
    action = request.POST.get("action")
    if request.method == "POST" and action in ("preview", "confirm") and form.is_valid():
        what = {"course": form.cleaned_data["course"], "qualification": form.cleaned_data["qualification"]}
        if action == "preview":
            plans = assignment_plan(target=target, **what)
        else:
            try:
                assignment_link(target=target, actor=request.user, **what)
            except ValidationError as exc:
                form.add_error(None, exc.messages[0])
            else:
                plans = assignment_plan(target=target, **what)
                total = sum(p.work for p in plans)
                email = form.cleaned_data["email_students"]
                job = _job_or_inline(
                    request, total=total, kind=OrgJob.Kind.ASSIGNMENT,
                    payload={"kind": kind, "target_id": pk, "course_id": what["course"] and what["course"].pk,
                             "qualification_id": what["qualification"] and what["qualification"].pk, "email_students": email},
                    run=lambda: assignment_apply(target=target, actor=request.user, email_students=email, **what),
                )
                if job is None:
                    return redirect("org_unit_assign", kind=kind, pk=pk)
                plans = None
    elif request.method == "POST" and action in ("unlink_preview", "unlink_confirm"):
        assignment_id = request.POST.get("assignment", "")
        if not assignment_id.isdigit():
            raise Http404
        unlinking = get_object_or_404(target.assignments(), pk=assignment_id)
        unlink_form = UnlinkForm(request.POST)
        unlink_form.is_valid()
        also = unlink_form.cleaned_data.get("also_unenroll", False)
        if action == "unlink_preview":
            unlink_plans = assignment_unlink_preview(assignment=unlinking) if also else []
        else:
            done = assignment_unlink(assignment=unlinking, also_unenroll=also, actor=request.user)
            messages.success(request, f"Unlinked; {done['unenrolled']} unenrolled.")
            return redirect("org_unit_assign", kind=kind, pk=pk)
    return render(request, "organisations/unit_assign.html", {
        "target": target, "kind": kind, "kind_label": UnitKind(kind).label, "tab": "assign", "form": form,
        "assignments": target.assignments(), "group_courses": target.group.courses.all() if target.group else [],
        "plans": plans, "unlinking": unlinking, "unlink_plans": unlink_plans, "job": job,
        "member_count": target.members().count(),
    })


def import_results_url(job: OrgJob | None, *, course=None) -> str | None:
    """Where the per-row results of a finished import job can be downloaded (None before)."""
    if job is None or job.kind != OrgJob.Kind.IMPORT or job.status != OrgJob.Status.SUCCEEDED:
        return None
    org_import = OrgImport.objects.filter(job=job).only("public_id", "results_file").first()
    if org_import is None or not org_import.results_file:
        return None
    if course is not None:
        return reverse("course_import_results", args=[course.key, org_import.public_id])
    return reverse("org_import_results", args=[org_import.public_id])


def import_results_response(org_import: OrgImport) -> FileResponse:
    if not org_import.results_file:
        raise Http404("The results are not ready yet.")
    return FileResponse(org_import.results_file.open("rb"), as_attachment=True,
                        filename=org_import.results_file.name.rsplit("/", 1)[-1], content_type="text/csv")


@_admin_view
def job_status(request, job_id):
    org_jobs_fail_stale()
    job = get_object_or_404(OrgJob, public_id=job_id)
    response = render(request, "organisations/_job.html", {"job": job, "results_url": import_results_url(job)})
    if not job.is_pending and request.htmx:
        return HttpResponseStopPolling(response.content)
    return response


@_admin_view
def rule_list(request):
    rules_ = EnrollmentRule.objects.prefetch_related("courses").select_related("company", "department", "team", "function", "group", "manager")
    return render(request, "organisations/rule_list.html", {"rules": rules_})


@_admin_view
def rule_edit(request, pk=None):
    rule = get_object_or_404(EnrollmentRule, pk=pk) if pk else None
    form = RuleForm(request.POST or None, instance=rule)
    plan, job = None, None
    if request.method == "POST" and form.is_valid():
        candidate = form.save(commit=False)
        courses = form.cleaned_data["courses"]
        if request.POST.get("action") == "confirm":
            saved = rule_save(rule=candidate, courses=courses, actor=request.user)
            email = form.cleaned_data["email_students"]
            plan = rule_plan(rule=saved)
            job = _job_or_inline(
                request, total=plan.work, kind=OrgJob.Kind.RULE, payload={"rule_id": saved.pk, "email_students": email},
                run=lambda: rule_apply(rule=saved, actor=request.user, email_students=email),
            )
            if job is None:
                return redirect("org_rule_edit", pk=saved.pk)
            plan = None
            form = RuleForm(instance=saved)
            rule = saved
        else:
            plan = rule_preview(rule=candidate, courses=courses)
    return render(request, "organisations/rule_form.html", {"form": form, "rule": rule, "plan": plan, "job": job})


# --- Import -----------------------------------------------------------------------

def import_context(request, *, course=None, checked=None, error=None, template_form=None, upload_form=None):
    return {
        "template_form": template_form or ImportTemplateForm(course=course),
        "upload_form": upload_form or ImportUploadForm(),
        "checked": checked, "import_error": error, "import_course": course,
        "max_rows": imports.MAX_ROWS, "max_mb": imports.MAX_BYTES // (1024 * 1024),
    }


def import_template_response(courses) -> HttpResponse:
    response = HttpResponse(
        imports.template_workbook(courses=list(courses)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="import_template_{timezone.now():%Y-%m-%d-%H%M}.xlsx"'
    return response


def import_handle_upload(request, *, course=None):
    """Check an uploaded file; returns (OrgImport or None, error message or None, form)."""
    form = ImportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return None, None, form
    upload = form.cleaned_data["file"]
    if upload.size > imports.MAX_BYTES:
        return None, f"The file is {upload.size:,} bytes; the limit is {imports.MAX_BYTES:,}. Nothing was imported.", form
    try:
        checked = imports.import_check(name=upload.name, data=upload.read(), actor=request.user, course=course,
                                       email_students=form.cleaned_data["email_students"])
    except imports.ImportFileError as exc:
        return None, f"{exc} Nothing was imported.", form
    return checked, None, form


@_admin_view
def import_template(request):
    form = ImportTemplateForm(request.GET)
    if not form.is_valid():
        # Say what is missing next to the field, on the import page itself.
        focus_first_error(form)
        return render(request, "organisations/import.html", import_context(request, template_form=form), status=400)
    return import_template_response(form.cleaned_data["courses"])


@_admin_view
def import_page(request):
    checked = error = upload_form = None
    if request.method == "POST":
        checked, error, upload_form = import_handle_upload(request)
    job = None
    if request.GET.get("job"):
        job = OrgJob.objects.filter(public_id=request.GET["job"]).first()
    context = import_context(request, checked=checked, error=error, upload_form=upload_form)
    context.update(job=job, results_url=import_results_url(job))
    return render(request, "organisations/import.html", context, status=400 if error else 200)


@_admin_view
@require_POST
def import_start(request, import_id):
    org_import = get_object_or_404(OrgImport, public_id=import_id, course__isnull=True)
    job = imports.import_start(org_import=org_import, actor=request.user)
    return redirect(f"{reverse('org_import')}?job={job.public_id}#job-{job.public_id}")


@_admin_view
def import_results(request, import_id):
    """Platform administrators may see every import, a course's included."""
    return import_results_response(get_object_or_404(OrgImport, public_id=import_id))


# --- A user's page -------------------------------------------------------------------

@_admin_view
def user_list(request):
    q = request.GET.get("q", "").strip()
    users = User.objects.select_related("company", "department").order_by("username")
    if q:
        users = users.filter(Q(username__icontains=q) | Q(email__icontains=q) | Q(last_name__icontains=q))
    return render(request, "organisations/user_list.html", {"page": Paginator(users, 50).get_page(request.GET.get("page")), "q": q})


@_admin_view
def user_page(request, pk):
    person = get_object_or_404(User.objects.select_related("company", "department", "manager"), pk=pk)
    # Each form is bound only to its own POST: an unbound form on GET shows no errors.
    action = request.POST.get("action") if request.method == "POST" else None
    form = CoursesForm(request.POST if action is not None and action != "profile" else None)
    profile_form = ProfileForm(request.POST if action == "profile" else None, initial={
        "company": person.company_id, "department": person.department_id, "manager": person.manager_id, "language": person.language,
        "teams": list(person.org_units.filter(kind=UnitKind.TEAM)), "functions": list(person.org_units.filter(kind=UnitKind.FUNCTION)),
    })
    if profile_form.is_bound and profile_form.is_valid():
        data = profile_form.cleaned_data
        if data["manager"] == person:
            profile_form.add_error("manager", "A person cannot manage themself.")
        else:
            done = user_profile_update(user=person, actor=request.user, teams=data["teams"], functions=data["functions"],
                                       company=data["company"], department=data["department"], manager=data["manager"], language=data["language"])
            messages.success(request, "Saved; " + enrollments_changed_text(made=done["enrolled"] + done["reactivated"], ended=done["unenrolled"]))
            return redirect("org_user_page", pk=pk)
    if form.is_bound and form.is_valid():
        done = user_enroll_courses(user=person, courses=form.cleaned_data["courses"], actor=request.user,
                                   email_students=form.cleaned_data["email_students"], source=Source.ADMIN)
        messages.success(request, enrollments_made_text(done))
        return redirect("org_user_page", pk=pk)
    focus_first_error(form)
    focus_first_error(profile_form)
    return render(request, "organisations/user_page.html", {
        "person": person, "form": form, "profile_form": profile_form, "enrollments": user_enrollments(user=person),
        "units": person.org_units.all(), "groups": person.member_groups.all(),
    })


# --- My Team -------------------------------------------------------------------------------

@login_required
def team_page(request):
    """A manager's direct reports, and enrolling them in courses open to them.
    Only managers (at least one active report) get here, anyone else 403; only
    one's own reports can be chosen: anyone else's id is refused with 403."""
    reports = team_reports(manager=request.user)
    if not is_manager(request.user):
        raise PermissionDenied("My Team is for managers: nobody reports to you.")
    form = TeamEnrollForm(request.POST or None, manager=request.user)
    if request.method == "POST":
        asked = request.POST.getlist("users")
        if asked and not set(map(str, reports.values_list("pk", flat=True))).issuperset(asked):
            raise PermissionDenied("You can enroll your own reports only.")
        if form.is_valid():
            try:
                done = team_enroll(manager=request.user, users=form.cleaned_data["users"], courses=form.cleaned_data["courses"],
                                   email_students=form.cleaned_data["email_students"])
            except ValidationError as exc:
                form.add_error("courses", exc)
            else:
                messages.success(request, enrollments_made_text(done["enrolled"], already=done["already"]))
                return redirect("my_team")
        focus_first_error(form)
    return render(request, "organisations/team.html", {"reports": reports.prefetch_related("enrollments__course"), "form": form})


# --- Import on a course's Membership tab (that course only, course team) --------------

@login_required
def course_import(request, course_key):
    course = course_for_team_member(request, course_key)
    checked = error = upload_form = None
    if request.method == "POST":
        checked, error, upload_form = import_handle_upload(request, course=course)
    job = None
    if request.GET.get("job"):
        job = OrgJob.objects.filter(public_id=request.GET["job"], requester=request.user).first()
    context = {"course": course, "tab": "membership", "job": job, "results_url": import_results_url(job, course=course)}
    context.update(import_context(request, course=course, checked=checked, error=error, upload_form=upload_form))
    return render(request, "organisations/course_import.html", context, status=400 if error else 200)


@login_required
def course_import_template(request, course_key):
    course = course_for_team_member(request, course_key)
    return import_template_response([course])


@login_required
@require_POST
def course_import_start(request, course_key, import_id):
    course = course_for_team_member(request, course_key)
    org_import = get_object_or_404(OrgImport, public_id=import_id, course=course)
    job = imports.import_start(org_import=org_import, actor=request.user)
    return redirect(f"{reverse('course_import', args=[course.key])}?job={job.public_id}#job-{job.public_id}")


@login_required
def course_import_results(request, course_key, import_id):
    """The course team sees the results of its course's imports, like the batch enrollment's results files."""
    course = course_for_team_member(request, course_key)
    return import_results_response(get_object_or_404(OrgImport, public_id=import_id, course=course))


@login_required
def course_job_status(request, course_key, job_id):
    course = course_for_team_member(request, course_key)
    org_jobs_fail_stale()
    job = get_object_or_404(OrgJob, public_id=job_id, requester=request.user)
    response = render(request, "organisations/_job.html", {"job": job, "course": course, "results_url": import_results_url(job, course=course)})
    if not job.is_pending and request.htmx:
        return HttpResponseStopPolling(response.content)
    return response
