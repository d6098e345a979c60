import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views import defaults
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def home(request):
    context = {}
    if request.user.is_authenticated:
        from courses.rules import courses_managed_by
        from enrollments.selectors import current_enrollments, past_enrollments
        from organisations.rules import groups_led_by

        context["enrollments"] = current_enrollments(user=request.user)
        context["past_enrollments"] = past_enrollments(user=request.user)
        context["managed_courses"] = courses_managed_by(user=request.user).order_by("key")
        context["led_groups"] = groups_led_by(user=request.user)
    return render(request, "home.html", context)


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # report, never raise: this is the health page
        logger.warning("health: database check failed: %s", exc)
        return "error"
    return "ok"


def _broker_status() -> str:
    if not settings.CELERY_BROKER_URL:
        return "not configured (tasks run in-process)"
    from enrollment_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        logger.warning("health: broker check failed: %s", exc)
        return "error"
    return "ok"


@never_cache
def healthz(request):
    """Database and broker status as JSON; 503 when either is down."""
    status = {"database": _database_status(), "broker": _broker_status()}
    healthy = status["database"] == "ok" and status["broker"] != "error"
    status["status"] = "ok" if healthy else "error"
    return JsonResponse(status, status=200 if healthy else 503)


def ratelimited(request, exception=None):
    """django-ratelimit's Ratelimited is a PermissionDenied; answer 429, not 403."""
    response = render(request, "429.html", status=429)
    response["Retry-After"] = "600"
    return response


def bad_request(request, exception=None):
    """Django's 400, except for a request body over DATA_UPLOAD_MAX_MEMORY_SIZE:
    Django stops reading it (RequestDataTooBig, raised wherever the form is
    first read, often by the CSRF check before any view runs), and the person
    gets a page that says so, that nothing was changed, and the way back."""
    if not isinstance(exception, RequestDataTooBig):
        return defaults.bad_request(request, exception)
    match = getattr(request, "resolver_match", None)
    back_url, back_label = reverse("home"), gettext("Back to your dashboard")
    if match is not None and match.url_name == "batch_enrollment":
        back_url, back_label = reverse("instructor_membership", kwargs=match.kwargs), gettext("Back to the Membership tab")
    else:
        referer = request.META.get("HTTP_REFERER", "")
        if referer and url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
            back_url, back_label = referer, gettext("Back to the form")
    context = {
        "limit_mb": settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024),
        "back_url": back_url,
        "back_label": back_label,
        "batch": match is not None and match.url_name == "batch_enrollment",
        "max_identifiers": settings.ENROLLMENT_MAX_IDENTIFIERS,
    }
    return render(request, "413.html", context, status=413)
