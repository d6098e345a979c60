"""/organisation/units/: units and groups, their members and what is linked to them."""


from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, ProtectedError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_POST

from ..forms import AssignForm, GroupForm, MembersAddForm, MembersRemoveForm, UnitForm, UnlinkForm, focus_first_error
from ..models import UNIT_KIND_PLURALS, Group, OrgJob, OrgUnit, UnitKind
from ..selectors import Target, assignment_plan
from ..services import (
    MemberOutcome,
    MembersPreviewStale,
    RemovePreviewStale,
    assignment_apply,
    assignment_link,
    assignment_unlink,
    assignment_unlink_preview,
    unit_members_add_identifiers,
    unit_members_add_preview,
    unit_members_remove,
    unit_members_remove_preview,
    unit_remove,
    unit_save,
)
from ..texts import count_text, delete_unit_label, members_added_text, new_unit_label
from .common import admin_view, job_or_inline

OUTCOMES_SHOWN = 1000
User = get_user_model()


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
        {"kind": kind, "kind_label": UnitKind(kind).label, "kind_plural": UNIT_KIND_PLURALS[UnitKind(kind)], "units": _units_of(kind),
         "new_label": new_unit_label(kind)},
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
            form.add_error("name", _("A %(kind)s with this name exists already.") % {"kind": UnitKind(kind).label.lower()})
        else:
            unit_save(obj=obj)
            messages.success(request, _("%(kind)s %(name)s created.") % {"kind": UnitKind(kind).label, "name": obj.name})
            return redirect("org_unit_assign", kind=kind, pk=obj.pk)
    return render(request, "organisations/unit_form.html", {"form": form, "kind": kind, "kind_label": UnitKind(kind).label, "new_label": new_unit_label(kind)})


@admin_view
def unit_edit(request, kind, pk):
    target = Target.parse(kind, pk)
    form = _unit_form(kind, request.POST or None, instance=target.obj)
    if request.method == "POST" and form.is_valid():
        try:
            form.instance.validate_constraints()
        except ValidationError:
            form.add_error("name", _("Another unit of this kind has this name."))
        else:
            unit_save(obj=form.save(commit=False))
            messages.success(request, _("Saved."))
            return redirect("org_unit_edit", kind=kind, pk=pk)
    return render(request, "organisations/unit_form.html", {"form": form, "target": target, "kind": kind, "kind_label": UnitKind(kind).label, "tab": "edit",
                                                            "delete_label": delete_unit_label(kind)})


@admin_view
@require_POST
def unit_delete(request, kind, pk):
    target = Target.parse(kind, pk)
    try:
        unit_remove(obj=target.obj)
    except ProtectedError:
        messages.error(request, _("%(name)s is named by an enrollment rule; change the rule first.") % {"name": target.obj.name})
        return redirect("org_unit_edit", kind=kind, pk=pk)
    messages.success(request, _("%(name)s deleted. Nobody was unenrolled.") % {"name": target.obj.name})
    return redirect(f"{reverse('org_unit_list')}?kind={kind}")


@admin_view
def unit_members(request, kind, pk):
    """Adding and removing members: each first previews (nothing written),
    then Confirm applies exactly the preview, or shows the new one if the
    unit changed in between."""
    target = Target.parse(kind, pk)
    action = request.POST.get("action", "")
    add_form = MembersAddForm(request.POST if action in ("add", "add_confirm") else None)
    remove_form = MembersRemoveForm(request.POST if action in ("remove", "remove_confirm") else None)
    # A person chosen on the preview may have left the unit before Confirm: the
    # confirm form accepts any account and the preview's fingerprint says whether it still holds.
    remove_form.fields["users"].queryset = target.members() if action != "remove_confirm" else User.objects.all()
    session_key = f"org_members_added:{kind}:{pk}"
    preview = remove_preview = None
    if request.method == "POST":
        if add_form.is_bound and add_form.is_valid():
            identifiers, email = add_form.cleaned_data["identifiers"], add_form.cleaned_data["email_students"]
            if action == "add":
                preview = unit_members_add_preview(target=target, identifiers=identifiers, email_students=email)
            else:
                try:
                    added = unit_members_add_identifiers(target=target, identifiers=identifiers, actor=request.user, email_students=email,
                                                         expected_fingerprint=request.POST.get("fingerprint", ""))
                except MembersPreviewStale as stale:
                    preview = stale.preview
                    messages.warning(request, _("The %(kind)s changed since the preview; this is what adding would do now. Nothing was changed.")
                                     % {"kind": UnitKind(kind).label.lower()})
                else:
                    # Post/Redirect/Get: the per-person outcomes wait in the session for the next GET of this page, once.
                    request.session[session_key] = {
                        "outcomes": [o.as_dict() for o in added.outcomes[:OUTCOMES_SHOWN]], "total": len(added.outcomes),
                    }
                    made = added.enrollments["enrolled"] + added.enrollments["reactivated"]
                    messages.success(request, members_added_text(added.counts, kind=kind, enrollments_made=made))
                    return redirect(reverse("org_unit_members", args=[kind, pk]) + "#add-results")
        elif remove_form.is_bound and remove_form.is_valid():
            chosen = [u.pk for u in remove_form.cleaned_data["users"]]
            also = remove_form.cleaned_data["also_unenroll"]
            if action == "remove":
                people, fingerprint = unit_members_remove_preview(target=target, user_ids=chosen)
            else:
                try:
                    done = unit_members_remove(target=target, users=remove_form.cleaned_data["users"], actor=request.user, also_unenroll=also,
                                               expected_fingerprint=request.POST.get("fingerprint", ""))
                except RemovePreviewStale as stale:
                    people, fingerprint = stale.people, stale.fingerprint
                    messages.warning(request, _("The members of the %(kind)s changed since the preview; this is what removing would do now. Nothing was changed.")
                                     % {"kind": UnitKind(kind).label.lower()})
                else:
                    removed = len(chosen)
                    unenrolled = done["unenrolled"]
                    messages.success(request, _("%(removed)s; %(unenrolled)s.") % {
                        "removed": count_text(removed, ngettext("%(count)s member removed", "%(count)s members removed", removed)),
                        "unenrolled": count_text(unenrolled, ngettext("%(count)s unenrolled", "%(count)s unenrolled", unenrolled)),
                    })
                    return redirect("org_unit_members", kind=kind, pk=pk)
            remove_preview = {"people": people, "fingerprint": fingerprint, "also_unenroll": also, "course_count": len(target.course_ids())}
        else:
            focus_first_error(add_form)
    page = Paginator(target.members().order_by("username").only("id", "username", "email", "first_name", "last_name"), 100).get_page(request.GET.get("page"))
    return render(request, "organisations/unit_members.html", {
        "target": target, "kind": kind, "kind_label": UnitKind(kind).label, "tab": "members", "page": page,
        "add_form": add_form, "remove_form": remove_form, "added": request.session.pop(session_key, None) if request.method == "GET" else None,
        "preview": preview, "preview_groups": _preview_groups(preview, kind) if preview else None, "remove_preview": remove_preview,
    })


# The preview's outcome groups, in the order the summary names them.
PREVIEW_GROUPS = (MemberOutcome.ADDED, MemberOutcome.MOVED, MemberOutcome.ALREADY, MemberOutcome.NO_SUCH_USER, MemberOutcome.INVALID)


def _preview_phrase(outcome: str, n: int, kind: str) -> str:
    """What the preview says of ``n`` people with this outcome, "%(count)s" standing for their number."""
    if outcome == MemberOutcome.ADDED:
        return ngettext("%(count)s will be added", "%(count)s will be added", n)
    if outcome == MemberOutcome.MOVED:
        if kind == UnitKind.COMPANY:
            return ngettext("%(count)s will move from another company", "%(count)s will move from another company", n)
        return ngettext("%(count)s will move from another department", "%(count)s will move from another department", n)
    if outcome == MemberOutcome.ALREADY:
        return ngettext("%(count)s already a member", "%(count)s already members", n)
    if outcome == MemberOutcome.NO_SUCH_USER:
        return ngettext("%(count)s no such user", "%(count)s no such user", n)
    return ngettext("%(count)s invalid", "%(count)s invalid", n)


def _preview_label(outcome: str) -> str:
    """The outcome column of the preview's tables (a move says where from, in the template)."""
    if outcome == MemberOutcome.ADDED:
        return pgettext("member preview", "will be added")
    return MemberOutcome.label(outcome)


def _preview_groups(preview, kind: str) -> list[dict]:
    groups = []
    for outcome in PREVIEW_GROUPS:
        rows = [o for o in preview.outcomes if o.outcome == outcome]
        if rows:
            phrase = _preview_phrase(outcome, len(rows), kind)
            number = format_html('<span class="count-{}">{}</span>', outcome.replace(" ", "-"), count_text(len(rows), "%(count)s"))
            groups.append({"outcome": outcome, "count": len(rows), "rows": rows[:OUTCOMES_SHOWN], "error": outcome in MemberOutcome.ERRORS,
                           "label": _preview_label(outcome), "text": count_text(len(rows), phrase),
                           "html": mark_safe(escape(phrase) % {"count": number})})  # noqa: S308 (the phrase is escaped, the number is format_html)
    return groups


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
                assignment_link(target=target, actor=request.user, duration_days=form.cleaned_data["duration_days"],
                                recur_months=form.cleaned_data["recur_months"], **what)
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
            unenrolled = done["unenrolled"]
            messages.success(request, _("Unlinked; %(unenrolled)s.") % {
                "unenrolled": count_text(unenrolled, ngettext("%(count)s unenrolled", "%(count)s unenrolled", unenrolled)),
            })
            return redirect("org_unit_assign", kind=kind, pk=pk)
    return render(request, "organisations/unit_assign.html", {
        "target": target, "kind": kind, "kind_label": UnitKind(kind).label, "tab": "assign", "form": form,
        "assignments": target.assignments(), "group_courses": target.group.courses.all() if target.group else [],
        "plans": plans, "unlinking": unlinking, "unlink_plans": unlink_plans, "job": job,
        "member_count": target.members().count(),
    })
