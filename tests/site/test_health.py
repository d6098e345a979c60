"""/healthz: database and broker status as JSON, 503 when something is down."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

UNUSED_BROKER = "redis://127.0.0.1:6399/0"  # nothing listens on 6399
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _redis_is_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=1).ping())
    except redis.exceptions.ConnectionError:
        return False


def test_health_without_a_broker_reports_in_process_tasks(client, settings):
    settings.CELERY_BROKER_URL = ""
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"database": "ok", "broker": "not configured (tasks run in-process)", "status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_health_with_an_unreachable_broker_is_503(client, settings):
    settings.CELERY_BROKER_URL = UNUSED_BROKER
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "error", "status": "error"}


def test_health_with_the_local_redis_is_ok(client, settings):
    if not _redis_is_up():
        pytest.fail("Redis is not running on 127.0.0.1:6379; start it with `bash scripts/test_services.sh`")
    settings.CELERY_BROKER_URL = LOCAL_REDIS
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "status": "ok"}


def test_health_with_a_broken_database_is_503(client, settings, monkeypatch):
    from enrollment_site import views

    def broken_cursor():
        raise views.connection.Database.OperationalError("database is down")

    settings.CELERY_BROKER_URL = ""
    monkeypatch.setattr(views.connection, "cursor", broken_cursor)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] == "error"
    assert response.json()["status"] == "error"


def test_health_needs_no_login(client, settings):
    settings.CELERY_BROKER_URL = ""
    client.logout()
    assert client.get(reverse("healthz")).status_code == 200


def test_health_answers_plain_http_even_when_https_is_enforced(client, settings):
    # Issue 13: with DEBUG=0 every plain-http request is redirected to https, and so was a load balancer's probe.
    settings.SECURE_SSL_REDIRECT = True
    settings.CELERY_BROKER_URL = ""
    assert client.get("/healthz").status_code == 200
    assert client.get("/courses/").status_code == 301  # everything else still goes to https
