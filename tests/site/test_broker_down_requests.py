"""With the broker down a write request stays fast: sending its task after commit
makes one connection attempt, bounded by the configured connect timeout (kombu's
defaults retried for about 6 seconds), and the job it queued stays queued for the
sweep instead of turning into an error.

The broker is a real closed port, not a mock; the attempts are counted by
watching the sockets that connect to it."""

import socket

import pytest
from django.urls import reverse

from enrollment_site.celery import app
from reports.models import ReportTask
from tests.celery_worker import _reset_app_connections

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once it is closed


@pytest.fixture
def dead_broker(settings, monkeypatch):
    """Point the web process's Celery app at a closed port; yield the list of
    (timeout, address) of every connection attempt made to it."""
    port = _closed_port()
    url = f"redis://127.0.0.1:{port}/0"
    attempts: list[tuple[float | None, tuple]] = []
    real_connect = socket.socket.connect

    def watched_connect(sock, address):
        if isinstance(address, tuple) and address[1] == port:
            attempts.append((sock.gettimeout(), address))
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", watched_connect)
    saved = {key: app.conf.changes[key] for key in ("broker_url", "task_always_eager") if key in app.conf.changes}
    settings.CELERY_BROKER_URL = url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.update(broker_url=url, task_always_eager=False)
    _reset_app_connections(app)
    try:
        yield attempts
    finally:
        for key in ("broker_url", "task_always_eager"):
            app.conf.changes.pop(key, None)
        app.conf.changes.update(saved)
        _reset_app_connections(app)


def test_a_report_requested_with_the_broker_down_is_queued_after_one_bounded_attempt(
    dead_broker, client_for, course, course_staff, caplog
):
    response = client_for(course_staff).post(reverse("report_request", args=[course.key]), {"kind": "enrolled_profiles"}, follow=True)

    assert response.status_code == 200
    # One attempt, with the short connect timeout: no retries, no wait for the OS.
    assert len(dead_broker) == 1, dead_broker
    timeout = dead_broker[0][0]
    assert timeout is not None and timeout <= 1
    # The user is told it is queued, not an error; the row waits for the sweep.
    page = response.content.decode()
    assert "is queued; it is listed under Pending tasks" in page
    task = ReportTask.objects.get(course=course)
    assert task.status == ReportTask.Status.QUEUED
    assert "could not enqueue" in caplog.text
