"""The instructor dashboard's pages about what happened to whom: a learner's
story ("Check enrollment status"), the course's audit log with its export,
and the invitations table with resend and revoke.

Every view fetches the course with ``course_for_team_member`` (404 for an
unknown key, 403 outside the team) and reads through the selectors; writes go
through one service each."""

from __future__ import annotations

import csv
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from courses.dashboard import dashboard_context
from courses.selectors import course_for_team_member
from enrollment_site.lib.keyset import Cursor, InvalidCursor
from enrollment_site.lib.safe_csv import safe_row

from .forms_history import AuditFilterForm, InvitationActionForm, InvitationSearchForm, StoryForm
from .models import Allowance
from .selectors.audit_log import audit_export_rows, audit_log_page, operation_summaries
from .selectors.history import email_status_shown, learner_story
from .selectors.invitations import invitation_count, invitation_ids, invitations_page
from .services import allowance_resend, allowance_revoke

# The roster's tab (the learners table); the story and the invitations belong to it.
LEARNERS_TAB = "learners"
CONFIRM_LIST_LIMIT = 20


def _cursor(request, errors: list[str]) -> Cursor | None:
    try:
        return Cursor.decode(request.GET.get("cursor", ""))
    except InvalidCursor as exc:
        errors.append(exc.message)
        return None


# --- a learner's story ------------------------------------------------------------------------


@login_required
@require_GET
def learner_story_view(request, course_key):
    """Check enrollment status (``?who=`` a username or email, enrolled or not):
    the person's state in this course and their whole history in it. An htmx
    request gets the panel alone, for a page that shows it beside a table."""
    course = course_for_team_member(request, course_key)
    form = StoryForm(request.GET if "who" in request.GET else None)
    story = learner_story(course=course, who=form.cleaned_data["who"]) if form.is_valid() else None
    context = {**dashboard_context(course=course, tab=LEARNERS_TAB), "form": form, "story": story}
    status = 400 if form.is_bound and not form.is_valid() else 200
    template = "enrollments/instructor/story.html"
    if request.htmx:
        template += "#story-panel"
    return render(request, template, context, status=status)


# --- the audit log ------------------------------------------------------------------------------


@login_required
@require_GET
def instructor_audit(request, course_key):
    """The course's audit log: every enrollment change, newest first, filtered,
    in keyset pages of 50, with the size of each operation on the page."""
    course = course_for_team_member(request, course_key)
    form = AuditFilterForm(request.GET)
    errors: list[str] = []
    cursor = _cursor(request, errors)
    context = {**dashboard_context(course=course, tab="audit"), "form": form, "cursor_errors": errors, "page": None}
    if not form.is_valid() or errors:
        return render(request, "enrollments/instructor/audit.html", context, status=400)
    filters = form.audit_filter()
    page = audit_log_page(course=course, filters=filters, cursor=cursor)
    operations = operation_summaries(course=course, operation_ids=[row.operation_id for row in page.rows])
    for row in page.rows:
        row.operation_summary = operations.get(row.operation_id)
    query = {k: v for k, v in request.GET.items() if k in form.fields and v}
    context.update({
        "page": page,
        "operations": operations,
        "page_operations": [operations[op] for op in dict.fromkeys(r.operation_id for r in page.rows) if op in operations],
        "chosen_operation": operations.get(filters.operation_id) if filters.operation_id else None,
        "export_url": reverse("instructor_audit_export", args=[course.key]) + ("?" + urlencode(query) if query else ""),
        "is_filtered": bool(query),
        "query": query,
    })
    return render(request, "enrollments/instructor/audit.html", context)


class _Echo:
    def write(self, value):
        return value


AUDIT_CSV_HEADER = [
    "created", "actor", "identifier", "username", "email", "state_before", "state_after", "source", "reason", "operation_id",
    "mode_before", "mode_after", "cohort_before", "cohort_after",
]


@login_required
@require_GET
def instructor_audit_export(request, course_key):
    """Every row the filters show (all pages), streamed as CSV, every cell guarded
    against formulas. Filters that do not validate answer the page's 400."""
    course = course_for_team_member(request, course_key)
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        context = {**dashboard_context(course=course, tab="audit"), "form": form, "cursor_errors": [], "page": None}
        return render(request, "enrollments/instructor/audit.html", context, status=400)
    rows = audit_export_rows(course=course, filters=form.audit_filter())
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(AUDIT_CSV_HEADER)
        for row in rows:
            yield writer.writerow(safe_row([
                timezone.localtime(row.created), row.actor.username if row.actor else "", row.identifier,
                row.user.username if row.user else "", row.user.email if row.user else "",
                row.state_before, row.state_after, row.source, row.reason, str(row.operation_id or ""),
                row.mode_before, row.mode_after, row.cohort_before, row.cohort_after,
            ]))

    stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M")
    filename = "".join(ch for ch in f"{course.org}_{course.number}_audit_log_{stamp}.csv" if ch.isalnum() or ch in "._-")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- invitations ----------------------------------------------------------------------------------


def invitations_table_context(request, course) -> tuple[dict, list[str]]:
    """What ``enrollments/_invitations.html`` needs, from the query string
    (``q``, ``cursor``), and the messages of values it refused. A page that
    includes the table (the learners page) merges the dict into its context."""
    search = InvitationSearchForm(request.GET)
    errors: list[str] = []
    cursor = _cursor(request, errors)
    q = ""
    if search.is_valid():
        q = search.cleaned_data["q"]
    else:
        errors.extend(str(e) for field_errors in search.errors.values() for e in field_errors)
    page = invitations_page(course=course, search=q, cursor=cursor) if not errors else None
    rows = []
    for allowance in page.rows if page else []:
        status = getattr(allowance, "email_status", None)
        rows.append({"allowance": allowance, "email_status": email_status_shown(status) if status else ""})
    return {
        "invitations_search": search,
        "invitations_q": q,
        "invitations_page": page,
        "invitations_rows": rows,
        "invitations_total": invitation_count(course=course, search=q) if not errors else 0,
        "invitations_errors": errors,
    }, errors


@login_required
@require_GET
def instructor_invitations(request, course_key):
    """The invitations table (allowances not yet used): search, keyset pages,
    resend and revoke, one at a time or in bulk."""
    course = course_for_team_member(request, course_key)
    table, errors = invitations_table_context(request, course)
    context = {**dashboard_context(course=course, tab=LEARNERS_TAB), **table}
    return render(request, "enrollments/instructor/invitations.html", context, status=400 if errors else 200)


def _invitations_url(course, q: str = "") -> str:
    return reverse("instructor_invitations", args=[course.key]) + ("?" + urlencode({"q": q}) if q else "")


@login_required
@require_http_methods(["GET", "POST"])
def invitations_action(request, course_key):
    """Resend or revoke invitations. GET asks first, saying how many people the
    action touches (the selection, or every invitation matching the search);
    POST applies it and goes back to the table with what was done. A resend
    of one row is posted straight from the table: it takes nothing away."""
    course = course_for_team_member(request, course_key)
    data = request.POST if request.method == "POST" else request.GET
    form = InvitationActionForm(data)
    context = {**dashboard_context(course=course, tab=LEARNERS_TAB), "form": form}
    if not form.is_valid():
        return render(request, "enrollments/instructor/invitations_confirm.html", context, status=400)
    cleaned = form.cleaned_data
    q = cleaned["q"]
    ids = invitation_ids(course=course, search=q, ids=None if cleaned["all"] else cleaned["allowance"])
    action = cleaned["action"]
    if request.method == "GET":
        asked = None if cleaned["all"] else len(set(cleaned["allowance"]))
        context.update({
            "action": action, "ids": ids, "q": q, "all": cleaned["all"], "asked": asked,
            "gone": (asked - len(ids)) if asked is not None else 0,
            "emails": list(Allowance.objects.filter(pk__in=ids[:CONFIRM_LIST_LIMIT]).order_by("email_key").values_list("email", flat=True)),
            "back_url": _invitations_url(course, q),
        })
        return render(request, "enrollments/instructor/invitations_confirm.html", context)
    expected = cleaned["expected"]
    if cleaned["all"] and expected is not None and expected != len(ids):
        messages.warning(request, ngettext(
            "The search matches %(n)s invitation now, not the %(m)s you confirmed; nothing was changed. Confirm again.",
            "The search matches %(n)s invitations now, not the %(m)s you confirmed; nothing was changed. Confirm again.",
            len(ids),
        ) % {"n": len(ids), "m": expected})
        return redirect(reverse("invitations_action", args=[course.key]) + "?" + urlencode({"action": action, "all": 1, "q": q}))
    if action == "resend":
        result = allowance_resend(course=course, actor=request.user, allowance_ids=ids)
        if result.changed:
            messages.success(request, ngettext("%(n)s invitation emailed again.", "%(n)s invitations emailed again.", result.changed) % {"n": result.changed})
        if result.too_soon:
            shown = ", ".join(result.too_soon[:5])
            if len(result.too_soon) > 5:
                shown = _("%(listed)s and others") % {"listed": shown}
            messages.warning(request, ngettext(
                "%(n)s invitation was emailed less than %(m)s minutes ago and was not sent again: %(who)s.",
                "%(n)s invitations were emailed less than %(m)s minutes ago and were not sent again: %(who)s.",
                len(result.too_soon),
            ) % {"n": len(result.too_soon), "m": settings.INVITATION_RESEND_MINUTES, "who": shown})
    else:
        result = allowance_revoke(
            course=course, actor=request.user, allowance_ids=ids, reason=cleaned["reason"], email_students=cleaned["email_students"]
        )
        if result.changed:
            messages.success(request, ngettext("%(n)s invitation revoked.", "%(n)s invitations revoked.", result.changed) % {"n": result.changed})
    stale = (len(set(cleaned["allowance"])) - len(ids) if not cleaned["all"] else 0) + result.gone
    if stale:
        messages.info(request, ngettext(
            "%(n)s of the invitations selected was no longer open (used or revoked since) and was left alone.",
            "%(n)s of the invitations selected were no longer open (used or revoked since) and were left alone.",
            stale,
        ) % {"n": stale})
    if not result.changed and not result.too_soon and not stale:
        messages.info(request, _("No invitation matched; nothing was changed."))
    return redirect(_invitations_url(course, q))

