"""The codes pages (one per scope: a course's Codes tab, a group, everything)
and the learner's redemption form."""

from __future__ import annotations

import csv
import logging
import re
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.rules import is_platform_admin
from courses.dashboard import dashboard_context
from courses.rules import courses_managed_by
from courses.selectors import course_for_team_member
from enrollment_site.lib.attempt_limits import attempt_count, client_address
from enrollment_site.lib.keyset import Cursor, IdCursor, InvalidCursor, id_keyset_page, keyset_page
from enrollment_site.lib.safe_csv import safe_row
from organisations.rules import groups_led_by
from organisations.selectors import group_for_leader

from .filters import CodeFilter
from .forms import CodeGenerateForm, RedeemForm, default_time_zone
from .models import CodeBatch, Status
from .selectors import (
    Scope,
    batch_choices,
    batch_targets,
    code_in_scope,
    codes_count,
    id_cursor_for_page,
    redemptions_cursor_for_page,
    redemptions_of,
)
from .services import RedemptionError, code_batch_generate, code_deactivate, code_redeem

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
GENERATED_SESSION_KEY = "codes_generated_batch"


# --- scopes: every view starts with the permission-checked fetch of its scope ---

def course_scope(request, course_key) -> Scope:
    return Scope("course", course=course_for_team_member(request, course_key))


def group_scope(request, group_id) -> Scope:
    return Scope("group", group=group_for_leader(request, group_id))


def all_scope(request) -> Scope:
    if not is_platform_admin(request.user):
        raise PermissionDenied(_("Only platform administrators manage every code."))
    return Scope("all")


# --- the codes page ------------------------------------------------------------

def _generate_form(request, scope: Scope, data=None) -> CodeGenerateForm:
    initial = {
        "courses": [scope.course] if scope.course else [], "groups": [scope.group] if scope.group else [],
        "time_zone": default_time_zone(request.user),
    }
    return CodeGenerateForm(
        data, initial=initial, courses=courses_managed_by(user=request.user).order_by("key"), groups=groups_led_by(user=request.user)
    )


def codes_page(request, scope: Scope, *, template: str, context: dict | None = None):
    """GET: the generate form, the Generated codes panel, and the filtered, paginated
    codes table. POST: generate a batch, then back to the page showing it."""
    form = _generate_form(request, scope, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                batch = code_batch_generate(actor=request.user, **form.service_kwargs())
            except ValidationError as exc:
                for field_name, errors in exc.message_dict.items():
                    form.add_error(field_name if field_name in form.fields else None, errors)
            else:
                request.session[GENERATED_SESSION_KEY] = batch.pk
                messages.success(request, ngettext("%(n)s code generated.", "%(n)s codes generated.", batch.count) % {"n": batch.count})
                return HttpResponseRedirect(scope.url("page") + "?" + urlencode({"batch": batch.pk}))
        status = 400
    elif request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])

    code_filter = CodeFilter.for_request(request.GET, scope=scope)
    query = code_filter.query
    if "page" in request.GET and "cursor" not in request.GET and request.method == "GET":
        # An address from when the table was paged by number: the same page, by its cursor.
        start = id_cursor_for_page(code_filter.qs, page=request.GET["page"], size=PAGE_SIZE)
        return HttpResponseRedirect(scope.url("page") + _query_string({**query, "cursor": start.encode() if start else ""}))
    cursor_errors: list[str] = []
    try:
        cursor = IdCursor.decode(request.GET.get("cursor", ""))
    except InvalidCursor as exc:
        cursor_errors.append(exc.message)
        cursor = None
        status = 400
    page = id_keyset_page(code_filter.qs, cursor=cursor, size=PAGE_SIZE)
    data = code_filter.form.cleaned_data if code_filter.is_bound else {}
    count = codes_count(scope=scope, codes=code_filter.qs, batch=data.get("batch"), status=data.get("status") or "")

    generated = None
    generated_id = request.session.pop(GENERATED_SESSION_KEY, None)
    if generated_id is not None:
        generated = CodeBatch.objects.filter(pk=generated_id, created_by=request.user).first()

    context = {
        **(context or {}),
        "scope": scope,
        "form": form,
        "filter_form": code_filter.form,
        "batch_choices": batch_choices(scope=scope, search=request.GET.get(BATCH_SEARCH, ""), selected=data.get("batch")),
        "page": page,
        "codes_count": count,
        "page_size": PAGE_SIZE,
        "cursor_token": cursor.encode() if cursor else "",
        "oldest_cursor": IdCursor(0, back=True).encode(),
        "cursor_errors": cursor_errors,
        "export_url": scope.url("export") + _query_string(query),
        "batches_url": scope.url("batches"),
        "generated": generated,
        "generated_codes": list(generated.codes.order_by("id").values_list("code", flat=True)) if generated else [],
    }
    return render(request, template, context, status=status)


# The Batch filter's search: a query-string name of its own, which the table's filter ignores.
BATCH_SEARCH = "batch_q"


def batch_options(request, scope: Scope):
    """The Batch filter's ``<select>`` for a search (htmx swaps it in as one types;
    the page itself does the same without JavaScript): the newest batches
    matching, the one selected kept. GET only; a query or two whatever the
    number of batches."""
    code_filter = CodeFilter.for_request(request.GET, scope=scope)
    selected = code_filter.form.cleaned_data.get("batch") if code_filter.is_bound else None
    choices = batch_choices(scope=scope, search=request.GET.get(BATCH_SEARCH, ""), selected=selected)
    return render(request, "codes/_batch_options.html", {"batch_choices": choices, "filter_form": code_filter.form})


@login_required
@require_GET
def course_batch_options(request, course_key):
    return batch_options(request, course_scope(request, course_key))


@login_required
@require_GET
def group_batch_options(request, group_id):
    return batch_options(request, group_scope(request, group_id))


@login_required
@require_GET
def all_batch_options(request):
    return batch_options(request, all_scope(request))


@login_required
def instructor_codes(request, course_key):
    """The instructor dashboard's Codes tab (registered in apps.py): generate codes
    for this course, and the table of its codes."""
    scope = course_scope(request, course_key)
    return codes_page(
        request, scope, template="codes/instructor/codes.html", context=dashboard_context(course=scope.course, tab="codes")
    )


@login_required
def group_codes(request, group_id):
    scope = group_scope(request, group_id)
    return codes_page(request, scope, template="codes/scope_codes.html")


@login_required
def all_codes(request):
    scope = all_scope(request)
    return codes_page(request, scope, template="codes/scope_codes.html")


# --- actions on one code ---------------------------------------------------------

def _deactivate(request, scope: Scope, code_id: int):
    code = code_in_scope(scope=scope, code_id=code_id)
    if code_deactivate(code=code, actor=request.user):
        messages.success(request, _("Code %(code)s is deactivated.") % {"code": code.code})
    else:
        messages.info(request, _("Code %(code)s was already deactivated.") % {"code": code.code})
    # Back to the page the button was on (its filters and cursor; "page" from pages rendered before keyset paging).
    back = {k: request.POST.get(k, "") for k in ("batch", "status", "cursor", "page")}
    back = {k: v for k, v in back.items() if _QUERY_VALUE.fullmatch(v)}
    return HttpResponseRedirect(scope.url("page") + _query_string(back))


def _redemptions(request, scope: Scope, code_id: int):
    """The code's redemptions, newest first, in keyset pages; how many there are is
    the code's own ``uses`` (each redemption is one use), not a COUNT."""
    code = code_in_scope(scope=scope, code_id=code_id)
    redemptions = redemptions_of(code=code)
    if "page" in request.GET and "cursor" not in request.GET:
        start = redemptions_cursor_for_page(redemptions, page=request.GET["page"], size=PAGE_SIZE)
        return HttpResponseRedirect(request.path + _query_string({"cursor": start.encode() if start else ""}))
    cursor_errors: list[str] = []
    try:
        cursor = Cursor.decode(request.GET.get("cursor", ""))
    except InvalidCursor as exc:
        cursor_errors.append(exc.message)
        cursor = None
    page = keyset_page(redemptions, cursor=cursor, size=PAGE_SIZE)
    context = {"scope": scope, "code": code, "page": page, "cursor_errors": cursor_errors}
    return render(request, "codes/redemptions.html", context, status=400 if cursor_errors else 200)


# What a filter or cursor value in a way-back address may hold (cursors are URL-safe base64).
_QUERY_VALUE = re.compile(r"[A-Za-z0-9_-]{1,200}")


def _query_string(query: dict) -> str:
    """``?a=1&b=2`` of the non-empty values, or nothing."""
    query = {k: v for k, v in query.items() if v}
    return "?" + urlencode(query) if query else ""


# The export's columns, named in the language of whoever downloads it; the time
# zone last, so that programs reading the columns by position before it was added still can.
EXPORT_HEADER = [
    pgettext_lazy("report column", "code"), pgettext_lazy("report column", "courses"), pgettext_lazy("report column", "groups"),
    pgettext_lazy("report column", "uses"), pgettext_lazy("report column", "max_uses"), pgettext_lazy("report column", "expires"),
    pgettext_lazy("report column", "status"), pgettext_lazy("report column", "batch"), pgettext_lazy("report column", "created"),
    pgettext_lazy("report column", "past_cap"), pgettext_lazy("report column", "expiry_time_zone"),
]


class _Echo:
    def write(self, value):
        return value


def _export(request, scope: Scope):
    """Every row the filter shows (all pages), streamed, each cell guarded against
    formulas; the header and the words in it in the language of whoever asked."""
    codes = (
        CodeFilter.for_request(request.GET, scope=scope).qs.prefetch_related(None).select_related(None)
        .annotate(past_cap=F("batch__may_exceed_cap"), time_zone=F("batch__time_zone"))
    )
    targets = batch_targets(batch_ids=codes.order_by().values("batch_id"))
    writer = csv.writer(_Echo())
    # Read now: the rows are written after the view returns, when the request's language is no longer active.
    header = [str(column) for column in EXPORT_HEADER]
    unlimited, yes, no = _("unlimited"), _("yes"), _("no")
    status_labels = {value: str(label) for value, label in Status.choices}

    def rows():
        yield writer.writerow(safe_row(header))
        for code in codes.iterator(chunk_size=2000):
            courses, groups = targets.get(code.batch_id, ([], []))
            yield writer.writerow(
                safe_row([
                    code.code, "; ".join(courses), "; ".join(groups), code.uses,
                    code.max_uses if code.max_uses is not None else unlimited,
                    code.expires_on, status_labels[code.status_value], code.batch_id, code.created, yes if code.past_cap else no,
                    code.time_zone if code.expires_on else "",
                ])
            )

    stamp = timezone.now().strftime("%Y-%m-%d-%H%M")
    filename = "".join(ch for ch in f"{scope.slug}_codes_{stamp}.csv" if ch.isalnum() or ch in "._-")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_POST
def course_code_deactivate(request, course_key, code_id):
    return _deactivate(request, course_scope(request, course_key), code_id)


@login_required
@require_POST
def group_code_deactivate(request, group_id, code_id):
    return _deactivate(request, group_scope(request, group_id), code_id)


@login_required
@require_POST
def all_code_deactivate(request, code_id):
    return _deactivate(request, all_scope(request), code_id)


@login_required
@require_GET
def course_code_redemptions(request, course_key, code_id):
    return _redemptions(request, course_scope(request, course_key), code_id)


@login_required
@require_GET
def group_code_redemptions(request, group_id, code_id):
    return _redemptions(request, group_scope(request, group_id), code_id)


@login_required
@require_GET
def all_code_redemptions(request, code_id):
    return _redemptions(request, all_scope(request), code_id)


@login_required
@require_GET
def course_codes_export(request, course_key):
    return _export(request, course_scope(request, course_key))


@login_required
@require_GET
def group_codes_export(request, group_id):
    return _export(request, group_scope(request, group_id))


@login_required
@require_GET
def all_codes_export(request):
    return _export(request, all_scope(request))


# --- redemption ---------------------------------------------------------------------

RATE_GROUP = "codes.redeem"


def _rates() -> list[tuple[str, str]]:
    # Only failures count (every reason, expired and used-up included); see the redeem view.
    return [
        ("user", getattr(settings, "CODE_REDEEM_RATE_PER_USER", "10/10m")),
        ("ip", getattr(settings, "CODE_REDEEM_RATE_PER_IP", "200/10m")),
    ]


def _too_many(request, wait: int):
    minutes = max(1, -(-wait // 60))
    message = ngettext(
        "Too many unsuccessful code attempts. Please wait %(n)s minute and try again.",
        "Too many unsuccessful code attempts. Please wait %(n)s minutes and try again.",
        minutes,
    ) % {"n": minutes}
    response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = str(wait)
    return response


def redeem(request):
    """The learner's redemption form (field ``code``). Anonymous visitors log in
    (or sign up) first and come back with what they typed kept in ``?code=``."""
    typed = (request.POST.get("code") or request.GET.get("code") or "")[:100]
    if not request.user.is_authenticated:
        next_url = request.path + ("?" + urlencode({"code": typed}) if typed else "")
        if typed:
            # Survives a sign-up with email confirmation, where ?next= gets lost.
            request.session["codes_pending_code"] = typed
        return redirect_to_login(next_url)
    if request.method == "GET":
        initial = typed or request.session.pop("codes_pending_code", "")
        return render(request, "codes/redeem.html", {"form": RedeemForm(initial={"code": initial})})
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])

    form = RedeemForm(request.POST)
    if not form.is_valid():
        return render(request, "codes/redeem.html", {"form": form}, status=400)
    # Counted before it is tried, so concurrent wrong codes cannot overshoot the
    # limit; a redemption that works gives its count back.
    attempt = attempt_count(request, group=RATE_GROUP, rates=_rates())
    if attempt.refused:
        logger.warning("code redemption refused by the rate limit: user %s ip %s", request.user.pk, client_address(request))
        return _too_many(request, attempt.wait)
    try:
        result = code_redeem(code=form.cleaned_data["code"], user=request.user)
    except RedemptionError as exc:
        logger.info("code redemption failed (%s): user %s ip %s", exc.reason, request.user.pk, client_address(request))
        form.add_error("code", str(exc))
        return render(request, "codes/redeem.html", {"form": form, "failure": exc.reason}, status=400)
    except BaseException:
        attempt.give_back()  # a fault, not a wrong guess
        raise
    attempt.give_back()
    request.session.pop("codes_pending_code", None)
    return render(request, "codes/redeem.html", {"form": RedeemForm(), "result": result})
