"""Smoke subset: also run on SQLite (the embedded default of `make run`)."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from courses.models import Course
from enrollments.models import Enrollment

pytestmark = [pytest.mark.smoke, pytest.mark.django_db]

DEMO = "course-v1:Demo+ENR101+2026"


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=open("/dev/null", "w"))


def test_seed_demo_is_idempotent(demo):
    counts = (Course.objects.count(), Enrollment.objects.count())
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    assert (Course.objects.count(), Enrollment.objects.count()) == counts
    assert Course.objects.filter(key=DEMO).exists()


@pytest.mark.parametrize("username", ["admin", "instructor", "staff", "learner1"])
def test_demo_users_log_in_with_their_username_as_password(demo, client, username):
    response = client.post(reverse("account_login"), {"login": username, "password": username})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert client.get(reverse("home")).status_code == 200


def test_main_pages_render(demo, client):
    assert client.get("/").status_code == 200
    assert client.get("/courses/").status_code == 200
    assert client.get(f"/courses/{DEMO}/").status_code == 200
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/signup/").status_code == 200
    client.post(reverse("account_login"), {"login": "instructor", "password": "instructor"})
    for tab in ("info", "membership", "data", "codes"):
        response = client.get(f"/courses/{DEMO}/instructor/{tab}/")
        assert response.status_code == 200, tab
    assert b"Enrollment 101" in client.get("/").content


def test_health_page_reports_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_demo_organisation_and_my_team(demo, client):
    client.post(reverse("account_login"), {"login": "instructor", "password": "instructor"})
    html = client.get("/team/").content.decode()
    assert "learner1" in html and "learner3" in html and "learner4" not in html
    client.logout()
    client.post(reverse("account_login"), {"login": "admin", "password": "admin"})
    assert "Acme Corp" in client.get("/organisation/?kind=company").content.decode()
