"""/organisation/rules/: enrollment rules, with a preview before saving."""


from django.shortcuts import get_object_or_404, redirect, render

from ..forms import RuleForm
from ..models import EnrollmentRule, OrgJob
from ..selectors import rule_plan
from ..services import rule_apply, rule_preview, rule_save
from .common import admin_view, job_or_inline


@admin_view
def rule_list(request):
    rules_ = EnrollmentRule.objects.prefetch_related("courses").select_related("company", "department", "team", "function", "group", "manager")
    return render(request, "organisations/rule_list.html", {"rules": rules_})


@admin_view
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
            job = job_or_inline(
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
