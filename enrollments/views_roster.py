"""The instructor dashboard's Learners tab: the course roster (search, filters,
sort, keyset pages), its exports (CSV and xlsx of exactly the filtered or
selected rows) and its bulk actions with their confirmation page.

Every view fetches the course through ``course_for_team_member`` (404 for an
unknown key, 403 outside the team) and reads the query string through
``RosterFilterForm``: an invalid value answers 400 with the message next to
its field, and nothing is read or changed."""

from __future__ import annotations

import csv
import tempfile
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from courses.dashboard import dashboard_context
from courses.models import Course
from courses.selectors import course_for_team_member
from enrollment_site.lib.safe_csv import safe_row

from .forms_actions import RosterActionForm
from .forms_roster import SORT_LABELS, BulkSelectionForm, RosterFilterForm, learners_phrase
from .models import Enrollment, RosterAction
from .selectors.roster import (
    DEFAULT_SORT,
    InvalidCursor,
    RosterQuery,
    roster_export_header,
    roster_ids,
    roster_page,
    roster_rows,
    roster_selected_ids,
    roster_status,
    roster_usernames,
)
from .services import RosterPreviewStale, roster_apply, roster_preview, roster_result_message

EXPORT_HEADER = ["username", "full_name", "email", "mode", "status", "source", "cohort", "enrolled_at", "last_changed", "access_from", "access_until"]
EXPORT_CHUNK = 2000


def roster_row_values(enrollment: Enrollment) -> list:
    """One row of the exports, in ``EXPORT_HEADER``'s order (times in the site's
    time zone; an open end of the period is an empty cell)."""
    user = enrollment.user
    return [
        user.username, user.get_full_name(), user.email, enrollment.mode,
        roster_status(is_active=enrollment.is_active, access_from=enrollment.access_from, access_until=enrollment.access_until),
        enrollment.source,
        getattr(enrollment, "cohort_name", None) or "",  # annotated by roster_rows
        _local(enrollment.created), _local(enrollment.updated), _local(enrollment.access_from), _local(enrollment.access_until),
    ]


def _local(moment):
    return timezone.localtime(moment).replace(tzinfo=None) if moment is not None else ""


def _sort_headers(form: RosterFilterForm, query: RosterQuery | None) -> dict[str, dict]:
    """The sortable column headers: each links to its sort (descending first
    for times, ascending for text), and the current one to its reverse."""
    current = query.sort if query else DEFAULT_SORT
    headers: list[dict] = []
    for key, label in SORT_LABELS.items():
        first = f"-{key}" if key in ("created", "updated") else key
        if current.lstrip("-") == key:
            target = key if current.startswith("-") else f"-{key}"
            state = "descending" if current.startswith("-") else "ascending"
        else:
            target, state = first, ""
        headers.append({"key": key, "label": label, "sort": target, "state": state})
    return {h["key"]: h for h in headers}


@login_required
@require_GET
def instructor_learners(request, course_key):
    """The Learners tab. An htmx request (the filter form, a sort header, a
    page link) gets only the results part; any other the whole page."""
    course = course_for_team_member(request, course_key)
    form = RosterFilterForm(request.GET or None, course=course)
    page, status, query = None, 200, None
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        query = form.roster_query() if form.is_bound else RosterQuery()
        try:
            page = roster_page(course=course, query=query, cursor=form.cleaned_data.get("cursor", "") if form.is_bound else "")
        except InvalidCursor as exc:
            form.add_error("cursor", exc.message)
            page, status = None, 400
    filters = form.filter_params()
    context = dashboard_context(course=course, tab="learners")
    context.update({
        "form": form,
        "page": page,
        "query": query,
        "filters": filters,
        "filter_query": urlencode(filters),
        "headers": _sort_headers(form, query),
        "story_url": reverse("learner_story", args=[course.key]),
        "bulk_url": reverse("learners_bulk", args=[course.key]),
        "back_here": request.get_full_path(),
        "bulk_actions": RosterAction.choices,
        "total_phrase": learners_phrase(page.total) if page else "",
        "export_csv_url": reverse("learners_export_csv", args=[course.key]),
        "export_xlsx_url": reverse("learners_export_xlsx", args=[course.key]),
    })
    template = "enrollments/instructor/learners.html"
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, template + "#learners-results", context, status=status)
        # The address bar gets the filters in force only, not every empty field of the form.
        params = {**filters, **({"cursor": form.cleaned_data["cursor"]} if page and form.cleaned_data.get("cursor") else {})}
        return push_url(response, request.path + ("?" + urlencode(params) if params else ""))
    return render(request, template, context, status=status)


# --- exports ------------------------------------------------------------------


def _export_rows(request, course: Course):
    """The rows an export writes: exactly the filtered rows, or, with ``ids``,
    the selected ones among them. None (and the form with its errors) when the
    query string is not valid."""
    form = RosterFilterForm(request.GET, course=course)
    if not form.is_valid():
        return None, form
    rows = roster_rows(course=course, query=form.roster_query())
    # The bulk bar's Export sends the ticked rows too; with "every matching row" they do not narrow it.
    ids = request.GET.getlist("ids") if request.GET.get("scope") != "all" else []
    if ids:
        if not all(i.isdigit() and len(i) <= 18 for i in ids):
            form.add_error(None, _("The selection is not valid: reload the page and select again."))
            return None, form
        rows = rows.filter(pk__in=[int(i) for i in ids])
    return rows, form


def _export_refused(request, course: Course, form: RosterFilterForm):
    context = dashboard_context(course=course, tab="learners")
    context.update({"form": form, "page": None, "filters": {}, "headers": _sort_headers(form, None)})
    return render(request, "enrollments/instructor/learners.html", context, status=400)


def _export_name(course: Course, extension: str) -> str:
    stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M")
    return "".join(ch for ch in f"{course.org}_{course.number}_learners_{stamp}.{extension}" if ch.isalnum() or ch in "._-")


class _Echo:
    def write(self, value):
        return value


@login_required
@require_GET
def learners_export_csv(request, course_key):
    """The filtered (or selected) rows as CSV, streamed row by row from a
    server-side cursor (constant memory), every text cell guarded against formulas."""
    course = course_for_team_member(request, course_key)
    rows, form = _export_rows(request, course)
    if rows is None:
        return _export_refused(request, course, form)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(roster_export_header())
        for enrollment in rows.iterator(chunk_size=EXPORT_CHUNK):
            yield writer.writerow(safe_row(roster_row_values(enrollment)))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_name(course, "csv")}"'
    return response


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@login_required
@require_GET
def learners_export_xlsx(request, course_key):
    """The filtered (or selected) rows as an xlsx workbook, written by
    openpyxl's write-only mode (each row goes to disk as it is added, strings
    inline) into a temporary file that is then streamed: memory stays flat
    however many rows there are. Text cells are guarded as in the CSV."""
    from openpyxl import Workbook

    course = course_for_team_member(request, course_key)
    rows, form = _export_rows(request, course)
    if rows is None:
        return _export_refused(request, course, form)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Learners")
    sheet.append(roster_export_header())
    for enrollment in rows.iterator(chunk_size=EXPORT_CHUNK):
        sheet.append(safe_row(roster_row_values(enrollment)))
    # Deleted by the operating system once the response has sent it and closed it.
    target = tempfile.TemporaryFile(suffix=".xlsx")
    workbook.save(target)
    target.seek(0)
    return FileResponse(target, as_attachment=True, filename=_export_name(course, "xlsx"), content_type=XLSX_TYPE)


# --- bulk actions ----------------------------------------------------------------


BULK_HEADINGS = {
    RosterAction.UNENROLL: gettext_lazy("Unenroll"),
    RosterAction.ENROLL_AGAIN: gettext_lazy("Enroll again"),
    RosterAction.CHANGE_MODE: gettext_lazy("Change the mode of"),
    RosterAction.MOVE_COHORT: gettext_lazy("Move to a cohort"),
    RosterAction.EXTEND: gettext_lazy("Extend access of"),
}


BULK_PAGE = 100  # usernames per page of a preview's "Show all"


# Confirm's button, followed by how many learners the preview says change.
CONFIRM_VERBS = {
    RosterAction.UNENROLL: gettext_lazy("unenroll"),
    RosterAction.ENROLL_AGAIN: gettext_lazy("enroll again"),
    RosterAction.CHANGE_MODE: gettext_lazy("change the mode of"),
    RosterAction.MOVE_COHORT: gettext_lazy("move"),
    RosterAction.EXTEND: gettext_lazy("extend access of"),
}


@login_required
def learners_bulk(request, course_key):
    """A bulk action on the selected rows or on every row matching the filter.

    GET: the options, saying how many learners it touches (and naming a
    few), with the reason and the mode or cohort to choose. POST with
    ``step=preview``: what it would do, nothing written (``roster_preview``:
    counts per outcome with the first names, emails, invitations withdrawn,
    course team members called out), the options kept in hidden fields with
    the preview's fingerprint; with ``show=<outcome>`` (and ``page``) it also
    lists every learner of that outcome, ``BULK_PAGE`` to a page. POST with ``step=confirm``: apply exactly that
    through ``roster_apply`` and go back to the learners page
    (Post/Redirect/Get) with what was done; if the rows changed since the
    preview, nothing is written and the new preview is shown. Above
    ENROLLMENT_SYNC_LIMIT rows the action is a job, and the page goes to its
    progress. The selection and the filter travel in
    the query string of both. A selection holding rows that are not this
    course's (stale, or guessed), or a filter that matches a different number
    of rows than the confirmation said, changes nothing and says why."""
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    course = course_for_team_member(request, course_key)
    filters = RosterFilterForm(request.GET, course=course)
    selection = BulkSelectionForm(request.GET, actions=RosterAction.choices)
    back = reverse("instructor_learners", args=[course.key])
    if not filters.is_valid() or not selection.is_valid():
        errors = [*selection.non_field_errors(), *(f"{filters[name].label}: {' '.join(e)}" for name, e in filters.errors.items() if name in filters.fields)]
        errors += [f"{' '.join(e)}" for name, e in selection.errors.items() if name != "__all__"]
        return _bulk_refused(request, course, errors, back)
    back += "?" + urlencode(filters.filter_params()) if filters.filter_params() else ""
    action = selection.cleaned_data["action"]
    everyone = selection.cleaned_data["scope"] == "all"
    if everyone:
        ids = roster_ids(course=course, query=filters.roster_query())
        if not ids:
            return _bulk_refused(request, course, [_("Nobody matches the filter, so there is nobody to change.")], back)
    else:
        wanted = selection.cleaned_data["ids"]
        ids = roster_selected_ids(course=course, ids=wanted)
        if len(ids) != len(wanted):
            missing = len(wanted) - len(ids)
            return _bulk_refused(request, course, [ngettext(
                "%(learners)s of the selection is not in this course's roster "
                "(removed since the page was shown, or of another course). Nothing was changed: select again.",
                "%(learners)s of the selection are not in this course's roster "
                "(removed since the page was shown, or of another course). Nothing was changed: select again.",
                missing,
            ) % {"learners": learners_phrase(missing)}], back)
    form = RosterActionForm(request.POST if request.method == "POST" else None, course=course, action=action, many=True)
    status = 200
    preview = None
    stale = ""
    if request.method == "POST":
        expected = request.POST.get("expected", "")
        confirming = request.POST.get("step") == "confirm"
        if expected != str(len(ids)):
            # The rows changed between the confirmation and the click: ask again with the new number.
            form.add_error(None, _("The selection now holds %(learners)s, not %(expected)s. Nothing was changed: check and confirm again.") % {
                "learners": learners_phrase(len(ids)), "expected": expected or _("the number shown"),
            })
        elif form.is_valid() and not confirming:
            try:
                preview = roster_preview(course=course, action=action, enrollment_ids=ids, show=request.POST.get("show", ""),
                                         **_preview_options(form))
            except ValidationError as exc:
                form.add_error(None, exc)
        elif form.is_valid():
            try:
                result = roster_apply(actor=request.user, course=course, action=action, enrollment_ids=ids, **form.action_options(),
                                      expected_fingerprint=request.POST.get("fingerprint", ""))
            except RosterPreviewStale:
                preview = roster_preview(course=course, action=action, enrollment_ids=ids, **_preview_options(form))
                stale = _("Nothing was changed: the learners changed since the preview. Here is what it would do now; confirm again to apply it.")
                status = 409
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                if result.job is not None:
                    messages.info(request, ngettext(
                        "%(action)s: %(learners)s is being changed in the background.",
                        "%(action)s: %(learners)s are being changed in the background.",
                        len(ids),
                    ) % {"action": RosterAction(action).label, "learners": learners_phrase(len(ids))})
                    return redirect("roster_job_status", course_key=course.key, job_id=result.job.public_id)
                if result.refused_count:
                    messages.error(request, roster_result_message(result, action=action))
                else:
                    messages.success(request, roster_result_message(result, action=action))
                return redirect(back)
        if preview is None:
            status = 400
    shown = next((g for g in preview.groups if g.everyone is not None), None) if preview is not None else None
    context = dashboard_context(course=course, tab="learners")
    context.update({
        # "Show all" of one outcome, in pages: the preview again (nothing written), posted with the same options.
        "shown": shown, "shown_page": Paginator(shown.everyone, BULK_PAGE).get_page(request.POST.get("page")) if shown else None,
        "preview": preview, "stale": stale, "options": _hidden_options(form) if preview is not None else [],
        "confirm_label": _("%(verb)s %(learners)s") % {"verb": CONFIRM_VERBS[RosterAction(action)], "learners": learners_phrase(preview.changes)}
        if preview is not None else "",
        "form": form, "action": action, "heading": BULK_HEADINGS[RosterAction(action)], "count": len(ids),
        "count_phrase": learners_phrase(len(ids)), "everyone": everyone, "query": filters.roster_query(),
        "names": roster_usernames(course=course, ids=ids), "back": back,
        "action_url": request.get_full_path(), "sync_limit": settings.ENROLLMENT_SYNC_LIMIT,
    })
    return render(request, "enrollments/instructor/learners_bulk.html", context, status=status)


def _preview_options(form: RosterActionForm) -> dict:
    options = form.action_options()
    options.pop("reason", None)  # the reason changes no outcome
    return options


def _hidden_options(form: RosterActionForm) -> list[tuple[str, str]]:
    """The chosen options as the preview's Confirm form carries them, exactly as submitted."""
    return [(name, form.data.get(name, "")) for name in form.fields if form.data.get(name, "") != ""]


def _bulk_refused(request, course: Course, errors: list[str], back: str):
    context = dashboard_context(course=course, tab="learners")
    context.update({"errors": errors, "back": back})
    return render(request, "enrollments/instructor/learners_bulk.html", context, status=400)
