"""/organisation/users/: the user list and a person's page."""


from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from enrollments.models import Source

from ..filters import UserFilter
from ..forms import CoursesForm, ProfileForm, focus_first_error
from ..models import UnitKind
from ..selectors import user_enrollments, user_placement
from ..services import user_enroll_courses, user_profile_update
from ..texts import enrollments_changed_text, enrollments_made_text
from .common import admin_view

User = get_user_model()


# --- A user's page -------------------------------------------------------------------

@admin_view
def user_list(request):
    users = UserFilter(request.GET, queryset=User.objects.select_related("placement__company", "placement__department").order_by("username"))
    q = request.GET.get("q", "").strip()
    return render(request, "organisations/user_list.html", {"page": Paginator(users.qs, 50).get_page(request.GET.get("page")), "q": q})


@admin_view
def user_page(request, pk):
    person = get_object_or_404(User.objects.select_related("placement__company", "placement__department", "manager"), pk=pk)
    placement = user_placement(user=person)
    # Each form is bound only to its own POST: an unbound form on GET shows no errors.
    action = request.POST.get("action") if request.method == "POST" else None
    form = CoursesForm(request.POST if action is not None and action != "profile" else None)
    profile_form = ProfileForm(request.POST if action == "profile" else None, initial={
        "company": placement.company_id, "department": placement.department_id, "manager": person.manager_id, "language": person.language,
        "teams": list(person.org_units.filter(kind=UnitKind.TEAM)), "functions": list(person.org_units.filter(kind=UnitKind.FUNCTION)),
    })
    if profile_form.is_bound and profile_form.is_valid():
        data = profile_form.cleaned_data
        if data["manager"] == person:
            profile_form.add_error("manager", _("A person cannot manage themself."))
        else:
            done = user_profile_update(user=person, actor=request.user, teams=data["teams"], functions=data["functions"],
                                       company=data["company"], department=data["department"], manager=data["manager"], language=data["language"])
            changed = enrollments_changed_text(made=done["enrolled"] + done["reactivated"], ended=done["unenrolled"])
            messages.success(request, _("Saved; %(changed)s") % {"changed": changed})
            return redirect("org_user_page", pk=pk)
    if form.is_bound and form.is_valid():
        done = user_enroll_courses(user=person, courses=form.cleaned_data["courses"], actor=request.user,
                                   email_students=form.cleaned_data["email_students"], source=Source.ADMIN)
        messages.success(request, enrollments_made_text(done))
        return redirect("org_user_page", pk=pk)
    focus_first_error(form)
    focus_first_error(profile_form)
    return render(request, "organisations/user_page.html", {
        "person": person, "placement": placement, "form": form, "profile_form": profile_form, "enrollments": user_enrollments(user=person),
        "units": person.org_units.all(), "groups": person.member_groups.all(),
    })
