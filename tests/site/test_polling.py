"""The one progress-polling answer every job page uses."""

from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails

from enrollment_site.lib.polling import render_polled


def _request(htmx: bool):
    request = RequestFactory().get("/", HTTP_HX_REQUEST="true" if htmx else None) if htmx else RequestFactory().get("/")
    request.htmx = HtmxDetails(request)
    return request


def test_polling_stops_with_286_once_nothing_is_pending():
    response = render_polled(_request(htmx=True), "jobs/_progress.html", {"percent": 100, "done": 7, "total": 7, "counts": True}, pending=False)
    assert response.status_code == 286
    assert 'aria-valuenow="100"' in response.content.decode() and "7 / 7" in response.content.decode()


def test_polling_goes_on_while_pending_and_a_plain_reload_is_a_page():
    assert render_polled(_request(htmx=True), "jobs/_progress.html", {"percent": 40}, pending=True).status_code == 200
    assert render_polled(_request(htmx=False), "jobs/_progress.html", {"percent": 100}, pending=False).status_code == 200
