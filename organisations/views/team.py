"""/team/: My Team, a manager enrolling their reports."""


from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from ..forms import TeamEnrollForm, focus_first_error
from ..rules import is_manager, team_reports
from ..services import team_enroll
from ..texts import enrollments_made_text


@login_required
def team_page(request):
    """A manager's direct reports, and enrolling them in courses open to them.
    Only managers (at least one active report) get here, anyone else 403; only
    one's own reports can be chosen: anyone else's id is refused with 403."""
    reports = team_reports(manager=request.user)
    if not is_manager(request.user):
        raise PermissionDenied(_("My Team is for managers: nobody reports to you."))
    form = TeamEnrollForm(request.POST or None, manager=request.user)
    if request.method == "POST":
        asked = request.POST.getlist("users")
        if asked and not set(map(str, reports.values_list("pk", flat=True))).issuperset(asked):
            raise PermissionDenied(_("You can enroll your own reports only."))
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
