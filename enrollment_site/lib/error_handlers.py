"""Where an ``AppError`` (enrollment_site/lib/errors.py) becomes an answer:
``api_exception_handler`` for the REST API and ``AppErrorMiddleware`` for pages."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .errors import AppError, NotFound


def api_exception_handler(exc, context):
    """DRF's handler, plus: an AppError is a JSON ``{"detail", "code"}`` (and
    ``field`` when it concerns one input) with the error's status."""
    if isinstance(exc, AppError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=exc.status)
    return exception_handler(exc, context)


class AppErrorMiddleware:
    """An AppError a view did not handle: ``NotFound`` is the site's 404 page;
    any other is shown as an error message on the page the user came from
    (the referring page of this site, else the home page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, AppError):
            return None
        if isinstance(exception, NotFound):
            raise Http404(exception.message) from exception
        messages.error(request, exception.message)
        back = request.headers.get("referer", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            back = "/"
        return HttpResponseRedirect(back)
