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

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from courses.dashboard import dashboard_context
from courses.models import Course
from courses.selectors import course_for_team_member
from enrollment_site.lib.safe_csv import safe_row

from .models import Enrollment, Source
from .roster_forms import SORT_LABELS, RosterFilterForm, learners_phrase
from .selectors.roster import DEFAULT_SORT, STATUS_ACTIVE, STATUS_UNENROLLED, InvalidCursor, RosterQuery, roster_page, roster_rows

EXPORT_HEADER = ["username", "full_name", "email", "mode", "status", "source", "cohort", "enrolled_at", "last_changed"]
EXPORT_CHUNK = 2000


def roster_row_values(enrollment: Enrollment) -> list:
    """One row of the exports, in ``EXPORT_HEADER``'s order (times in the site's time zone)."""
    user = enrollment.user
    return [
        user.username, user.get_full_name(), user.email, enrollment.mode,
        STATUS_ACTIVE if enrollment.is_active else STATUS_UNENROLLED, enrollment.source, enrollment.cohort_name or "",
        timezone.localtime(enrollment.created).replace(tzinfo=None), timezone.localtime(enrollment.updated).replace(tzinfo=None),
    ]


def _optional_url(name: str, *args) -> str | None:
    # The learner's story and the per-row actions are served by other parts of
    # this app; until they are there, the table shows the row without the link.
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _sort_headers(form: RosterFilterForm, query: RosterQuery | None) -> dict[str, dict]:
    """The sortable column headers: each links to its sort (descending first
    for times, ascending for text), and the current one to its reverse."""
    current = query.sort if query else DEFAULT_SORT
    headers = []
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
        "story_url": _optional_url("learner_story", course.key),
        "has_actions": _optional_url("learner_action", course.key, 0, "unenroll") is not None,
        "sources": dict(Source.choices),
        "total_phrase": learners_phrase(page.total) if page else "",
        "export_csv_url": reverse("learners_export_csv", args=[course.key]),
        "export_xlsx_url": reverse("learners_export_xlsx", args=[course.key]),
    })
    template = "enrollments/instructor/learners.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#learners-results"
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
    ids = request.GET.getlist("ids")
    if ids:
        if not all(i.isdigit() and len(i) <= 18 for i in ids):
            form.add_error(None, "The selection is not valid: reload the page and select again.")
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
        yield writer.writerow(EXPORT_HEADER)
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
    sheet.append(EXPORT_HEADER)
    for enrollment in rows.iterator(chunk_size=EXPORT_CHUNK):
        sheet.append(safe_row(roster_row_values(enrollment)))
    # Deleted by the operating system once the response has sent it and closed it.
    target = tempfile.TemporaryFile(suffix=".xlsx")
    workbook.save(target)
    target.seek(0)
    return FileResponse(target, as_attachment=True, filename=_export_name(course, "xlsx"), content_type=XLSX_TYPE)
