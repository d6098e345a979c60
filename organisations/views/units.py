"""/organisation/units/: units and groups, their members and what is linked to them."""


from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, ProtectedError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..forms import AssignForm, GroupForm, MembersAddForm, MembersRemoveForm, UnitForm, UnlinkForm, focus_first_error
from ..models import UNIT_KIND_PLURALS, Group, OrgJob, OrgUnit, UnitKind
from ..selectors import Target, assignment_plan
from ..services import (
    assignment_apply,
    assignment_link,
    assignment_unlink,
    assignment_unlink_preview,
    unit_members_add_identifiers,
    unit_members_remove,
    unit_remove,
    unit_save,
)
from ..texts import count_text, members_added_text
from .common import admin_view, job_or_inline

OUTCOMES_SHOWN = 1000


def _units_of(kind: str):
    if kind == UnitKind.GROUP:
        return Group.objects.annotate(member_count=Count("memberships", distinct=True)).order_by("name", "id")
    units = OrgUnit.objects.filter(kind=kind)
    if kind in (UnitKind.COMPANY, UnitKind.DEPARTMENT):
        return units.annotate(member_count=Count(f"{kind}_placements", distinct=True))
    return units.annotate(member_count=Count("memberships", distinct=True))


@admin_view
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


@admin_view
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


@admin_view
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


@admin_view
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


@admin_view
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


@admin_view
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
                job = job_or_inline(
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
