"""The import pages: /organisation/import/ for platform administrators, and a
course's import on its Membership tab (that course only, course team).

Uploading keeps the file and queues its check (a job with progress); the
page then shows the check's progress (``?import=``), and its preview with
"Start import" once the check is done."""

import uuid

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from courses.selectors import course_for_team_member

from .. import import_file
from ..forms import ImportTemplateForm, ImportUploadForm, focus_first_error
from ..models import OrgImport, OrgJob
from ..services import imports as import_service
from .common import admin_view


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
        raise Http404(_("The results are not ready yet."))
    return FileResponse(org_import.results_file.open("rb"), as_attachment=True,
                        filename=org_import.results_file.name.rsplit("/", 1)[-1], content_type="text/csv")


def import_context(request, *, course=None, checked=None, error=None, template_form=None, upload_form=None):
    return {
        "template_form": template_form or ImportTemplateForm(course=course),
        "upload_form": upload_form or ImportUploadForm(),
        "checked": checked, "import_error": error, "import_course": course,
        "max_rows": import_file.MAX_ROWS, "max_mb": import_file.MAX_BYTES // (1024 * 1024),
    }


def import_template_response(courses) -> HttpResponse:
    response = HttpResponse(
        import_file.template_workbook(courses=list(courses)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="import_template_{timezone.now():%Y-%m-%d-%H%M}.xlsx"'
    return response


def import_handle_upload(request, *, course=None):
    """Keep an uploaded file and queue its check (the request never reads it);
    returns (OrgImport or None, error message or None, form)."""
    form = ImportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return None, None, form
    upload = form.cleaned_data["file"]
    if upload.size > import_file.MAX_BYTES:
        sizes = {"size": number_format(upload.size, force_grouping=True), "limit": number_format(import_file.MAX_BYTES, force_grouping=True)}
        return None, _("The file is %(size)s bytes; the limit is %(limit)s. Nothing was imported.") % sizes, form
    org_import = import_service.import_upload(upload=upload, actor=request.user, course=course,
                                              email_students=form.cleaned_data["email_students"])
    return org_import, None, form


def by_public_id(queryset, value):
    """The row of ``queryset`` with this public id from the query string, or None (a malformed id included)."""
    if not value:
        return None
    try:
        return queryset.filter(public_id=uuid.UUID(value)).first()
    except ValueError:
        return None


def checked_import(request, *, course=None):
    """The import named by ``?import=`` (uploaded by this user, on this page), for its check's progress or preview."""
    return by_public_id(OrgImport.objects.filter(requester=request.user, course=course).select_related("check_job"), request.GET.get("import"))


@admin_view
def import_template(request):
    form = ImportTemplateForm(request.GET)
    if not form.is_valid():
        # Say what is missing next to the field, on the import page itself.
        focus_first_error(form)
        return render(request, "organisations/import.html", import_context(request, template_form=form), status=400)
    return import_template_response(form.cleaned_data["courses"])


@admin_view
def import_page(request):
    error = upload_form = None
    if request.method == "POST":
        uploaded, error, upload_form = import_handle_upload(request)
        if uploaded is not None:  # Post/Redirect/Get: the page shows the check's progress, then its preview
            return redirect(f"{reverse('org_import')}?import={uploaded.public_id}#import-check")
    job = by_public_id(OrgJob.objects.all(), request.GET.get("job"))
    context = import_context(request, checked=checked_import(request), error=error, upload_form=upload_form)
    context.update(job=job, results_url=import_results_url(job))
    return render(request, "organisations/import.html", context, status=400 if error else 200)


@admin_view
@require_POST
def import_start(request, import_id):
    org_import = get_object_or_404(OrgImport, public_id=import_id, course__isnull=True)
    job = import_service.import_start(org_import=org_import, actor=request.user)
    return redirect(f"{reverse('org_import')}?job={job.public_id}#job-{job.public_id}")


@admin_view
def import_results(request, import_id):
    """Platform administrators may see every import, a course's included."""
    return import_results_response(get_object_or_404(OrgImport, public_id=import_id))


# --- Import on a course's Membership tab (that course only, course team) --------------

@login_required
def course_import(request, course_key):
    course = course_for_team_member(request, course_key)
    error = upload_form = None
    if request.method == "POST":
        uploaded, error, upload_form = import_handle_upload(request, course=course)
        if uploaded is not None:
            return redirect(f"{reverse('course_import', args=[course.key])}?import={uploaded.public_id}#import-check")
    job = by_public_id(OrgJob.objects.filter(requester=request.user), request.GET.get("job"))
    context = {"course": course, "tab": "membership", "job": job, "results_url": import_results_url(job, course=course)}
    context.update(import_context(request, course=course, checked=checked_import(request, course=course), error=error, upload_form=upload_form))
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
    job = import_service.import_start(org_import=org_import, actor=request.user)
    return redirect(f"{reverse('course_import', args=[course.key])}?job={job.public_id}#job-{job.public_id}")


@login_required
def course_import_results(request, course_key, import_id):
    """The course team sees the results of its course's imports, like the batch enrollment's results files."""
    course = course_for_team_member(request, course_key)
    return import_results_response(get_object_or_404(OrgImport, public_id=import_id, course=course))
