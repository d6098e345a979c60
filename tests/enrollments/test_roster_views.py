"""The Learners tab (the course roster page), its exports, and the roster API:
who may see them, what each filter shows, bad input, and query counts at two sizes."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from courses.models import CohortMembership
from enrollments.models import Enrollment, Source

from ..factories import CohortFactory, EnrollmentFactory, UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db


def page_url(course, **params):
    return reverse("instructor_learners", args=[course.key]), params


def get_page(client, course, **params):
    return client.get(reverse("instructor_learners", args=[course.key]), params)


def api_url(course) -> str:
    return reverse("api_course_roster", args=[course.key])


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")
    return client


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def roster(course, other_course):
    ann = EnrollmentFactory(course=course, user=UserFactory(username="annsmith", first_name="Ann", last_name="Smith"), source=Source.CODE, mode="verified")
    bob = EnrollmentFactory(course=course, user=UserFactory(username="bobjones", first_name="Bob", last_name="Jones"), source=Source.BATCH)
    gone = EnrollmentFactory(course=course, user=UserFactory(username="gone", first_name="Gone", last_name="Away"), is_active=False)
    elsewhere = EnrollmentFactory(course=other_course, user=UserFactory(username="annelsewhere", first_name="Ann", last_name="Else"))
    return {"ann": ann, "bob": bob, "gone": gone, "elsewhere": elsewhere}


# --- who may see the roster ------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 302)],
)
def test_the_page_is_for_the_course_team(request, client_for, course, roster, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    response = get_page(client_for(user), course)
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(reverse("account_login"))
    if status == 200:
        assert b"annsmith" in response.content and b"annelsewhere" not in response.content


@pytest.mark.parametrize("view", ["instructor_learners", "learners_export_csv", "learners_export_xlsx"])
def test_staff_of_another_course_get_403_and_an_unknown_course_404(client_for, course, other_staff, roster, view):
    client = client_for(other_staff)
    assert client.get(reverse(view, args=[course.key])).status_code == 403
    assert client.get(reverse(view, args=["course-v1:No+Such+Course"])).status_code == 404


@pytest.mark.parametrize(
    ("persona", "status"),
    [("platform_admin", 200), ("course_admin", 200), ("course_staff", 200), ("other_staff", 403), ("learner", 403), (None, 401)],
)
def test_the_api_is_for_the_course_team(request, course, roster, persona, status):
    user = request.getfixturevalue(persona) if persona else None
    response = api(user).get(api_url(course))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"


def test_the_api_answers_404_for_an_unknown_course(course_admin):
    response = api(course_admin).get(reverse("api_course_roster", args=["course-v1:No+Such+Course"]))
    assert response.status_code == 404


# --- what the page shows ---------------------------------------------------------------


def test_the_page_lists_each_enrollment_with_its_details_and_the_total(client_for, course, course_staff, roster):
    cohort = CohortFactory(course=course, name="Group A")
    CohortMembership.objects.create(cohort=cohort, course=course, user=roster["bob"].user)
    response = get_page(client_for(course_staff), course)
    html = response.content.decode()
    assert response.status_code == 200
    # course_staff is a team member but not enrolled here (the factory does not enroll them)
    assert "<strong>3 learners</strong> in this course" in html
    for text in ("annsmith", "Ann Smith", "verified", "Code", "bobjones", "Group A", "unenrolled", "Learners"):
        assert text in html
    # each username opens the learner's story; each row links its actions, coming back to this page
    assert f'<a href="{reverse("learner_story", args=[course.key])}?who=annsmith">annsmith</a>' in html
    back = "/courses/course-v1%3AAcme%2BENR101%2B2026/instructor/learners/"
    assert f'href="{reverse("learner_action", args=[course.key, roster["ann"].pk, "change_mode"])}?next={back}"' in html
    assert f'href="{reverse("learner_action", args=[course.key, roster["gone"].pk, "enroll_again"])}?next={back}"' in html


@pytest.mark.parametrize(
    ("params", "shown", "hidden"),
    [
        ({"q": "ann smi"}, ["annsmith"], ["bobjones", "gone"]),
        ({"q": "JONES"}, ["bobjones"], ["annsmith"]),
        ({"status": "unenrolled"}, ["gone"], ["annsmith", "bobjones"]),
        ({"status": "active"}, ["annsmith", "bobjones"], ["gone"]),
        ({"mode": "verified"}, ["annsmith"], ["bobjones"]),
        ({"source": "code"}, ["annsmith"], ["bobjones", "gone"]),
        ({"cohort": "none"}, ["annsmith", "bobjones", "gone"], []),
        ({"enrolled_from": "2000-01-01", "enrolled_to": "2999-12-31"}, ["annsmith", "bobjones", "gone"], []),
        ({"enrolled_to": "2000-01-01"}, [], ["annsmith", "bobjones", "gone"]),
    ],
)
def test_each_filter_in_the_query_string(client_for, course, course_admin, roster, params, shown, hidden):
    html = get_page(client_for(course_admin), course, **params).content.decode()
    for username in shown:
        assert f'data-username="{username}"' in html
    for username in hidden:
        assert f'data-username="{username}"' not in html
    phrase = f"{len(shown)} learner{'s' if len(shown) != 1 else ''}"
    assert f"<strong>{phrase}</strong>" in html


def test_a_cohort_filter_shows_its_members(client_for, course, course_admin, roster):
    cohort = CohortFactory(course=course, name="Group A")
    CohortMembership.objects.create(cohort=cohort, course=course, user=roster["bob"].user)
    html = get_page(client_for(course_admin), course, cohort=cohort.pk).content.decode()
    assert 'data-username="bobjones"' in html and 'data-username="annsmith"' not in html


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"q": "x" * 101}, "q", "at most 100 characters"),
        ({"mode": "gold"}, "mode", "Unknown mode “gold”"),
        ({"source": "magic"}, "source", "Unknown source “magic”"),
        ({"status": "maybe"}, "status", "Unknown status"),
        ({"cohort": "999999"}, "cohort", "Unknown cohort"),
        ({"enrolled_from": "2026-02-30"}, "enrolled_from", "YYYY-MM-DD"),
        ({"enrolled_from": "0001-01-01"}, "enrolled_from", "between 1900-01-01"),
        ({"enrolled_from": "2026-05-01", "enrolled_to": "2026-04-01"}, "enrolled_to", "comes before its start"),
        ({"sort": "password"}, "sort", "Unknown sort"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor", "Invalid cursor"),
        ({"q": "a\x00b"}, "q", "Null characters"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_shows_nothing(client_for, course, course_admin, roster, params, field, message):
    response = get_page(client_for(course_admin), course, **params)
    html = response.content.decode()
    assert response.status_code == 400
    assert message in html
    assert 'data-username="' not in html
    answer = api(course_admin).get(api_url(course), params)
    assert answer.status_code == 400
    assert message in " ".join(answer.json()[field])


def test_a_cohort_of_another_course_is_unknown_here(client_for, course, course_admin, roster, other_course):
    foreign = CohortFactory(course=other_course)
    assert get_page(client_for(course_admin), course, cohort=foreign.pk).status_code == 400
    assert "cohort" in api(course_admin).get(api_url(course), {"cohort": foreign.pk}).json()


def test_the_first_invalid_field_gets_the_focus(client_for, course, course_admin):
    html = get_page(client_for(course_admin), course, mode="gold", source="magic").content.decode()
    assert 'id="id_mode"' in html and 'aria-invalid="true" aria-describedby="id_mode-error" autofocus' in html
    assert html.count(" autofocus") == 1


def test_an_htmx_request_gets_the_results_only(client_for, course, course_admin, roster):
    response = client_for(course_admin).get(reverse("instructor_learners", args=[course.key]), {"q": "ann"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="learners-results" hx-history="false">')
    assert "<nav" not in html and 'data-username="annsmith"' in html


def test_the_page_without_javascript_filters_by_a_plain_get_form(client_for, course, course_admin, roster):
    html = get_page(client_for(course_admin), course).content.decode()
    form = html[html.index('<form method="get"'):]
    assert f'action="{reverse("instructor_learners", args=[course.key])}"' in form[:300]
    assert 'hx-push-url="true"' in form[:600]


def test_pages_follow_the_cursor_and_keep_the_filters(client_for, course, course_admin):
    users = User.objects.bulk_create([User(username=f"pg{i:03}", email=f"pg{i:03}@example.com") for i in range(60)])
    Enrollment.objects.bulk_create([Enrollment(user=u, course=course, source=Source.CODE) for u in users])
    client = client_for(course_admin)
    first = get_page(client, course, source="code", sort="username").content.decode()
    assert first.count('data-username="') == 50 and 'data-username="pg000"' in first
    assert "<strong>60 learners</strong>" in first
    start = first.index('rel="next" href="') + len('rel="next" href="')
    next_href = first[start:first.index('"', start)].replace("&amp;", "&")
    assert "source=code" in next_href and "sort=username" in next_href
    second = client.get(reverse("instructor_learners", args=[course.key]) + next_href).content.decode()
    assert second.count('data-username="') == 10 and 'data-username="pg059"' in second and 'data-username="pg000"' not in second
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_sort_headers_link_to_their_sort_and_say_the_current_one(client_for, course, course_admin, roster):
    html = get_page(client_for(course_admin), course, sort="username", q="o").content.decode()
    assert 'aria-sort="ascending"><a href="?sort=-username&amp;q=o"' in html or 'aria-sort="ascending"><a href="?q=o&amp;sort=-username"' in html
    assert '<input type="hidden" name="sort" value="username" form="learners-filter">' in html


@pytest.mark.postgresql
def test_the_page_costs_the_same_queries_at_two_sizes(client_for, course, course_admin):
    client, api_client = client_for(course_admin), api(course_admin)
    counts = []
    for size in (10, 200):
        users = User.objects.bulk_create([User(username=f"qc{size}-{i}", email=f"qc{size}-{i}@example.com") for i in range(size)])
        Enrollment.objects.bulk_create([Enrollment(user=u, course=course) for u in users])
        cohort = CohortFactory(course=course)
        CohortMembership.objects.bulk_create([CohortMembership(cohort=cohort, course=course, user=u) for u in users])
        get_page(client, course)  # warm up
        api_client.get(api_url(course))  # and the API's token, cached after its first request
        with CaptureQueriesContext(connection) as queries:
            assert get_page(client, course, q="qc", status="active").status_code == 200
        with CaptureQueriesContext(connection) as api_queries:
            assert api_client.get(api_url(course), {"q": "qc", "sort": "email"}).status_code == 200
        counts.append((len(queries), len(api_queries)))
    # session, user, course, team role, cohorts of the filter, rows, COUNT (the API: token instead of session)
    assert counts[0] == counts[1] and counts[0][0] <= 8 and counts[0][1] <= 7, counts
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)


# --- exports --------------------------------------------------------------------------------


def test_csv_export_has_exactly_the_filtered_rows(client_for, course, course_admin, roster):
    response = client_for(course_admin).get(reverse("learners_export_csv", args=[course.key]), {"source": "code"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="Acme_ENR101_learners_' in response["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0] == ["username", "full_name", "email", "mode", "status", "source", "cohort", "enrolled_at", "last_changed",
                       "access_from", "access_until"]
    assert [r[:7] for r in rows[1:]] == [["annsmith", "Ann Smith", roster["ann"].user.email, "verified", "active", "code", ""]]


def test_csv_export_of_the_selected_rows_only(client_for, course, course_admin, roster):
    url = reverse("learners_export_csv", args=[course.key])
    ids = [roster["bob"].pk, roster["gone"].pk, roster["elsewhere"].pk]  # a row of another course never comes out
    rows = csv_rows(client_for(course_admin).get(url, {"ids": ids}))
    assert sorted(r[0] for r in rows[1:]) == ["bobjones", "gone"]
    assert client_for(course_admin).get(url, {"ids": ["1; drop"]}).status_code == 400


def test_exports_neutralise_formulas(client_for, course, course_admin):
    user = UserFactory(username="-evil", first_name="=HYPERLINK(\"http://x\")", last_name="", email="@evil@example.com")
    EnrollmentFactory(course=course, user=user)
    rows = csv_rows(client_for(course_admin).get(reverse("learners_export_csv", args=[course.key])))
    assert rows[1][:3] == ["'-evil", "'=HYPERLINK(\"http://x\")", "'@evil@example.com"]
    response = client_for(course_admin).get(reverse("learners_export_xlsx", args=[course.key]))
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][:3] == ("'-evil", "'=HYPERLINK(\"http://x\")", "'@evil@example.com")


def test_xlsx_export_has_exactly_the_filtered_rows(client_for, course, course_admin, roster):
    response = client_for(course_admin).get(reverse("learners_export_xlsx", args=[course.key]), {"status": "active", "sort": "username"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "username"
    assert [v[0] for v in values[1:]] == ["annsmith", "bobjones"]


def test_an_export_with_a_bad_filter_is_refused(client_for, course, course_admin, roster):
    response = client_for(course_admin).get(reverse("learners_export_csv", args=[course.key]), {"mode": "gold"})
    assert response.status_code == 400
    assert "Unknown mode" in response.content.decode()


def test_the_export_is_streamed_in_chunks(client_for, course, course_admin, roster):
    response = client_for(course_admin).get(reverse("learners_export_csv", args=[course.key]))
    assert response.streaming


# --- the API ------------------------------------------------------------------------------------


def test_the_api_lists_the_roster_with_count_and_cursor(course, course_staff, roster):
    users = User.objects.bulk_create([User(username=f"api{i:02}", email=f"api{i:02}@example.com") for i in range(5)])
    Enrollment.objects.bulk_create([Enrollment(user=u, course=course) for u in users])
    client = api(course_staff)
    body = client.get(api_url(course), {"q": "api", "sort": "username", "page_size": 2}).json()
    assert body["count"] == 5
    assert [r["username"] for r in body["results"]] == ["api00", "api01"]
    assert set(body["results"][0]) == {
        "id", "username", "full_name", "email", "mode", "status", "source", "cohort", "enrolled_at", "last_changed",
        "access_from", "access_until",
    }
    seen = [r["username"] for r in body["results"]]
    while body["next"]:
        body = client.get(body["next"]).json()
        seen += [r["username"] for r in body["results"]]
    assert seen == [f"api{i:02}" for i in range(5)]
    back = client.get(body["previous"]).json()
    assert [r["username"] for r in back["results"]] == ["api02", "api03"]


def test_the_api_row(course, course_admin, roster):
    cohort = CohortFactory(course=course, name="Group A")
    CohortMembership.objects.create(cohort=cohort, course=course, user=roster["ann"].user)
    row = api(course_admin).get(api_url(course), {"q": "annsmith"}).json()["results"][0]
    assert row["id"] == roster["ann"].pk
    assert (row["full_name"], row["mode"], row["status"], row["source"], row["cohort"]) == ("Ann Smith", "verified", "active", "code", "Group A")
    gone = api(course_admin).get(api_url(course), {"status": "unenrolled"}).json()["results"]
    assert [(r["username"], r["status"], r["cohort"]) for r in gone] == [("gone", "unenrolled", None)]


@pytest.mark.parametrize("size", ["0", "501", "-1", "ten", "1.5"])
def test_the_api_names_a_bad_page_size(course, course_admin, size):
    response = api(course_admin).get(api_url(course), {"page_size": size})
    assert response.status_code == 400 and "page_size" in response.json()


def test_the_roster_api_is_in_the_openapi_schema(client):
    import json

    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    operation = schema["paths"]["/api/courses/v1/{course_key}/enrollments/"]["get"]
    names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert names == {"q", "status", "mode", "source", "cohort", "enrolled_from", "enrolled_to", "sort", "cursor", "page_size"}
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "429"}
    row = schema["components"]["schemas"]["RosterEnrollment"]
    assert list(row["properties"]) == [
        "id", "username", "full_name", "email", "mode", "status", "source", "cohort", "enrolled_at", "last_changed",
        "access_from", "access_until",
    ]
    assert row["properties"]["source"]["allOf"] == [{"$ref": "#/components/schemas/SourceEnum"}]
