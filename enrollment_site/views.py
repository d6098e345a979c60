import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def home(request):
    context = {}
    if request.user.is_authenticated:
        from courses.selectors import courses_managed_by
        from enrollments.selectors import current_enrollments
        from organisations.selectors import groups_led_by

        context["enrollments"] = current_enrollments(user=request.user)
        context["managed_courses"] = courses_managed_by(user=request.user)
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
