"""The one way a job's progress fragment answers htmx's polling."""

from django.shortcuts import render
from django_htmx.http import HttpResponseStopPolling


def render_polled(request, template_name: str, context: dict, *, pending: bool):
    """Render a progress fragment that htmx polls every few seconds.

    Once nothing is ``pending`` the answer to an htmx request is status 286
    (``HttpResponseStopPolling``), so the page stops asking; the fragment's
    own markup drops its ``hx-trigger`` too, for a plain reload."""
    response = render(request, template_name, context)
    if not pending and request.htmx:
        return HttpResponseStopPolling(response.content)
    return response
