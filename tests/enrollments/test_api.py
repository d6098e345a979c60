"""The REST API (issue 5): the enrollment listing and bulk enroll, whose request
and answer formats are contracts with existing clients (Open edX's enrollment API).

Answers are compared with the seed's examples field by field; every persona is
tried on both endpoints; query counts are pinned on PostgreSQL."""

import copy
import datetime as dt
import json

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from courses.models import Cohort, CohortMembership, Course
from enrollments.models import Allowance, BulkEnrollJob, Enrollment, EnrollmentAudit, Source
from tests.factories import CourseFactory, EnrollmentFactory, PlatformAdminFactory, UserFactory

User = get_user_model()

LIST_URL = "/api/so2/v1/enrollments"
BULK_URL = "/api/bulk_enroll/v1/bulk_enroll/"

# The seed's examples, verbatim (Open edX's API docs: "Get all enrollments" and "Bulk enroll").
SEED_ENROLLMENTS = [
    {"username": "johndoe", "email": "john@example.com", "course_id": "course-v1:MOOCit-demo-1",
     "is_active": True, "mode": "audit", "created": "2021-03-09 20:15"},
    {"username": "JaneDoe", "email": "jane@example.com", "course_id": "course-v1:MOOCit-demo-2",
     "is_active": True, "mode": "audit", "created": "2022-03-09 14:52"},
]
SEED_BULK_ANSWER = json.loads("""
{
    "action": "enroll",
    "courses": {
        "course-v1:edX+DemoX+Demo_Course": {
            "action": "enroll",
            "results": [
                {
                    "identifier": "test-email@example.com",
                    "after": {"enrollment": false, "allowed": false, "user": true, "auto_enroll": true},
                    "before": {"enrollment": true, "allowed": false, "user": true, "auto_enroll": true}
                }
            ],
            "auto_enroll": true
        }
    },
    "email_students": true,
    "auto_enroll": true
}
""")
SEED_COURSE = "course-v1:edX+DemoX+Demo_Course"
STATE_KEYS = {"enrollment", "allowed", "user", "auto_enroll"}

pytestmark = pytest.mark.django_db

# Query counts are pinned on PostgreSQL, where the product runs at scale.
postgres_only = pytest.mark.postgresql


# --- helpers and fixtures -------------------------------------------------------------


def api(user=None, token=None) -> APIClient:
    """A client as an integrator: with the user's Bearer token (or the given one)."""
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=token)
    elif user is not None:
        key = Token.objects.get_or_create(user=user)[0].key
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def bulk(client, **data):
    body = {"action": "enroll", "auto_enroll": True, "email_students": False, **data}
    return client.post(BULK_URL, body, format="json")


def state(*, enrollment=False, allowed=False, user=False, auto_enroll=False) -> dict:
    return {"enrollment": enrollment, "allowed": allowed, "user": user, "auto_enroll": auto_enroll}


def assert_same_shape(answer: dict, seed: dict) -> None:
    """The answer has exactly the seed's keys, at every level, with the same JSON types."""
    assert list(answer) == ["action", "courses", "email_students", "auto_enroll"]
    assert set(answer) == set(seed)
    for course_answer in answer["courses"].values():
        seed_course = next(iter(seed["courses"].values()))
        assert set(course_answer) == set(seed_course)
        for result in course_answer["results"]:
            seed_result = seed_course["results"][0]
            assert set(result) - {"invalidIdentifier"} == set(seed_result)
            assert isinstance(result["identifier"], str)
            for side in ("before", "after"):
                assert set(result[side]) == STATE_KEYS
                assert all(type(value) is bool for value in result[side].values())
    for key in ("email_students", "auto_enroll"):
        assert type(answer[key]) is bool


@pytest.fixture
def commit_callbacks(django_capture_on_commit_callbacks):
    """Run the on-commit work (tasks run eagerly in tests) as a committed request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def seed_course(db):
    return CourseFactory(key=SEED_COURSE, display_name="Demo course")


@pytest.fixture
def seed_user(db):
    return UserFactory(username="testuser", email="test-email@example.com")


@pytest.fixture
def course_b(db):
    return CourseFactory(key="course-v1:Acme+ENR102+2026", display_name="Enrollment 102")


@pytest.fixture
def staff_of_both(course, course_b):
    from tests.factories import CourseRoleFactory

    user = UserFactory(username="bothstaff")
    CourseRoleFactory(course=course, user=user)
    CourseRoleFactory(course=course_b, user=user)
    return user


def nothing_written(*courses) -> bool:
    return not (
        Enrollment.objects.filter(course__in=courses).exists()
        or Allowance.objects.filter(course__in=courses).exists()
        or EnrollmentAudit.objects.filter(course__in=courses).exists()
        or Cohort.objects.filter(course__in=courses).exists()
    )


# --- GET /api/so2/v1/enrollments ---------------------------------------------------------


def test_list_items_equal_the_seed_examples_newest_first(platform_admin):
    for item in SEED_ENROLLMENTS:
        course = CourseFactory(key=item["course_id"])
        user = UserFactory(username=item["username"], email=item["email"])
        created = dt.datetime.strptime(item["created"], "%Y-%m-%d %H:%M").replace(second=37, tzinfo=dt.UTC)
        EnrollmentFactory(user=user, course=course, mode=item["mode"], is_active=item["is_active"], created=created)

    response = api(platform_admin).get(LIST_URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    # The seed's fields field by field, newest first; the period's fields beside them.
    assert [{key: item[key] for key in SEED_ENROLLMENTS[0]} for item in body["results"]] == list(reversed(SEED_ENROLLMENTS))
    assert [list(item) for item in body["results"]] == [[*SEED_ENROLLMENTS[0], "access_from", "access_until", "status"]] * 2
    assert body["next"] is None and body["previous"] is None


def test_list_answers_with_and_without_the_trailing_slash(platform_admin, course):
    EnrollmentFactory(course=course)
    client = api(platform_admin)
    with_slash, without = client.get(LIST_URL + "/"), client.get(LIST_URL)
    assert with_slash.status_code == without.status_code == 200
    assert with_slash.json()["results"] == without.json()["results"] != []


def test_list_filters_combine(platform_admin, course, other_course):
    now = timezone.now()
    kim, lea = UserFactory(username="kim"), UserFactory(username="lea")
    EnrollmentFactory(user=kim, course=course, created=now - dt.timedelta(days=2))
    EnrollmentFactory(user=kim, course=other_course, created=now - dt.timedelta(days=20))
    EnrollmentFactory(user=lea, course=course, created=now - dt.timedelta(days=10))
    client = api(platform_admin)

    def pairs(**params):
        response = client.get(LIST_URL, params)
        assert response.status_code == 200, response.content
        return [(r["username"], r["course_id"]) for r in response.json()["results"]]

    assert pairs() == [("kim", course.key), ("lea", course.key), ("kim", other_course.key)]
    assert pairs(course_id=course.key) == [("kim", course.key), ("lea", course.key)]
    assert pairs(username="kim") == [("kim", course.key), ("kim", other_course.key)]
    assert pairs(days=5) == [("kim", course.key)]
    assert pairs(days=15, course_id=course.key) == [("kim", course.key), ("lea", course.key)]
    assert pairs(days=30, username="kim", course_id=other_course.key) == [("kim", other_course.key)]
    assert pairs(days=0) == []
    assert pairs(days=10**12) == pairs()  # beyond any history: everything
    assert pairs(course_id="course-v1:Nobody+Nothing+Never") == []
    assert pairs(course_id="not a key at all") == []
    assert pairs(username="nobody") == []
    assert pairs(course_id="", username="") == pairs()
    # a key sent unencoded ("+" read as a space) still finds its course
    assert client.get(f"{LIST_URL}?course_id={course.key}").json()["results"] == client.get(LIST_URL, {"course_id": course.key}).json()["results"] != []


@pytest.mark.parametrize("days", ["-1", "abc", "1.5", "5.0", " 5", "+5", "\u0665", "", "1e3", "9" * 5000])
def test_list_days_must_be_a_non_negative_integer(platform_admin, days):
    response = api(platform_admin).get(LIST_URL, {"days": days})
    assert response.status_code == 400
    assert list(response.json()) == ["days"]
    assert response.json()["days"][0]


@pytest.mark.parametrize("params", [{"username": "a\x00b"}, {"cursor": "garbage"}, {"cursor": "eyJjIjoiYmFkIiwiaSI6MX0"}, {"page_size": "0"}, {"page_size": "x"}, {"page_size": ""}])
def test_list_malformed_query_is_a_400_naming_the_parameter(platform_admin, params):
    response = api(platform_admin).get(LIST_URL, params)
    assert response.status_code == 400
    assert list(response.json()) == list(params)


def test_list_pages_with_a_cursor_even_when_thousands_share_a_timestamp(platform_admin, course):
    # A batch gives every row the same ``created``: the cursor must still page correctly.
    same_time = timezone.now() - dt.timedelta(hours=1)
    users = User.objects.bulk_create([User(username=f"p{i:04d}", email=f"p{i:04d}@example.com") for i in range(250)])
    Enrollment.objects.bulk_create(
        [Enrollment(user=u, course=course, created=same_time if i < 200 else same_time + dt.timedelta(minutes=i)) for i, u in enumerate(users)]
    )
    client = api(platform_admin)
    seen, pages, url = [], [], LIST_URL + "?page_size=60"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        pages.append(body)
        seen += [r["username"] for r in body["results"]]
        url = body["next"]
    assert len(pages) == 5 and len(seen) == 250 and len(set(seen)) == 250
    assert seen[:50] == [f"p{i:04d}" for i in range(249, 199, -1)]  # newest first
    assert pages[0]["previous"] is None
    # previous of the third page is the second page
    back = client.get(pages[2]["previous"]).json()
    assert [r["username"] for r in back["results"]] == [r["username"] for r in pages[1]["results"]]


def test_list_page_size_is_capped(platform_admin, course):
    EnrollmentFactory(course=course)
    response = api(platform_admin).get(LIST_URL, {"page_size": 10**6})
    assert response.status_code == 200 and len(response.json()["results"]) == 1


@pytest.fixture
def visibility(course, other_course, course_admin, course_staff, other_staff, learner):
    """Enrollments across two courses; returns every (username, course key) pair."""
    kim, max_ = UserFactory(username="kim"), UserFactory(username="max")
    rows = [(learner, course), (learner, other_course), (kim, course), (max_, other_course), (course_staff, other_course)]
    for user, c in rows:
        EnrollmentFactory(user=user, course=c)
    return {(u.username, c.key) for u, c in rows}


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("platform_admin", "all"),
        ("course_admin", {("learner", "course-v1:Acme+ENR101+2026"), ("kim", "course-v1:Acme+ENR101+2026")}),
        # staff see their course, plus their own enrollments elsewhere
        ("course_staff", {("learner", "course-v1:Acme+ENR101+2026"), ("kim", "course-v1:Acme+ENR101+2026"),
                          ("coursestaff", "course-v1:Acme+OTHER+2026")}),
        ("other_staff", {("learner", "course-v1:Acme+OTHER+2026"), ("max", "course-v1:Acme+OTHER+2026"),
                         ("coursestaff", "course-v1:Acme+OTHER+2026")}),
        ("learner", {("learner", "course-v1:Acme+ENR101+2026"), ("learner", "course-v1:Acme+OTHER+2026")}),
    ],
)
def test_list_permission_matrix(request, visibility, persona, expected):
    user = request.getfixturevalue(persona)
    response = api(user).get(LIST_URL)
    assert response.status_code == 200
    got = {(r["username"], r["course_id"]) for r in response.json()["results"]}
    assert got == (visibility if expected == "all" else expected)


@pytest.mark.parametrize("url", [LIST_URL, BULK_URL])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer 0123456789abcdef0123456789abcdef01234567", "Bearer", "Bearer a b", "Token whatever", "Basic Zm9vOmJhcg=="],
)
def test_no_or_bad_credentials_get_a_json_401(url, authorization, course):
    client = api(token=authorization) if authorization else api()
    response = client.get(url) if url == LIST_URL else bulk(client, identifiers="x@example.com", courses=course.key)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"]
    assert nothing_written(course)


def test_revoked_token_gets_401(learner):
    client = api(learner)
    Token.objects.filter(user=learner).delete()
    assert client.get(LIST_URL).status_code == 401


def test_inactive_users_token_gets_401(learner):
    client = api(learner)
    User.objects.filter(pk=learner.pk).update(is_active=False)
    assert client.get(LIST_URL).status_code == 401


def test_session_authentication_works_for_the_list(client_for, learner, course):
    EnrollmentFactory(user=learner, course=course)
    response = client_for(learner).get(LIST_URL)
    assert response.status_code == 200 and len(response.json()["results"]) == 1


@postgres_only
@pytest.mark.parametrize("persona", ["platform_admin", "course_staff"])
def test_list_page_takes_the_same_queries_for_10_and_300_enrollments(request, course, persona):
    user = request.getfixturevalue(persona)
    client = api(user)
    counts = []
    for size in (10, 300):
        Enrollment.objects.filter(course=course).delete()
        users = User.objects.bulk_create(
            [User(username=f"q{size}-{i}", email=f"q{size}-{i}@example.com") for i in range(size)]
        )
        Enrollment.objects.bulk_create([Enrollment(user=u, course=course) for u in users])
        client.get(LIST_URL)  # warm up
        with CaptureQueriesContext(connection) as queries:
            response = client.get(LIST_URL, {"course_id": course.key})
        assert response.status_code == 200
        assert len(response.json()["results"]) == min(size, 100)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 3, counts


# --- POST /api/bulk_enroll/v1/bulk_enroll/ -------------------------------------------------


def test_enroll_an_existing_user_answers_in_the_seed_shape(seed_course, seed_user, platform_admin):
    response = bulk(api(platform_admin), identifiers="test-email@example.com", courses=SEED_COURSE, email_students=True)

    assert response.status_code == 200, response.content
    answer = response.json()
    assert_same_shape(answer, SEED_BULK_ANSWER)
    expected = copy.deepcopy(SEED_BULK_ANSWER)
    result = expected["courses"][SEED_COURSE]["results"][0]
    result["before"], result["after"] = state(user=True), state(user=True, enrollment=True)
    assert answer == expected
    assert Enrollment.objects.get(user=seed_user, course=seed_course).is_active
    assert EnrollmentAudit.objects.get(course=seed_course).source == Source.API


def test_unenroll_answers_as_the_seed_example(seed_course, seed_user, platform_admin):
    EnrollmentFactory(user=seed_user, course=seed_course)

    response = bulk(
        api(platform_admin), action="unenroll", identifiers="test-email@example.com", courses=SEED_COURSE, email_students=True
    )

    assert response.status_code == 200, response.content
    answer = response.json()
    assert_same_shape(answer, SEED_BULK_ANSWER)
    # The seed's example is this unenrollment (enrolled before, not after), labelled
    # "enroll" and with "auto_enroll": true in both states. The states' auto_enroll
    # is the allowance's (false without one, as in Open edX); the action echoes the request.
    expected = copy.deepcopy(SEED_BULK_ANSWER)
    expected["action"] = expected["courses"][SEED_COURSE]["action"] = "unenroll"
    for side in ("before", "after"):
        expected["courses"][SEED_COURSE]["results"][0][side]["auto_enroll"] = False
    assert answer == expected
    enrollment = Enrollment.objects.get(user=seed_user, course=seed_course)
    assert enrollment.is_active is False  # the row is kept


@pytest.mark.parametrize("auto_enroll", [True, False])
def test_enroll_unknown_email_allows_it_with_or_without_auto_enroll(seed_course, platform_admin, auto_enroll):
    response = bulk(api(platform_admin), identifiers="New.Person@Example.com", courses=SEED_COURSE, auto_enroll=auto_enroll)

    answer = response.json()
    assert_same_shape(answer, SEED_BULK_ANSWER)
    assert answer["auto_enroll"] is auto_enroll and answer["courses"][SEED_COURSE]["auto_enroll"] is auto_enroll
    assert answer["courses"][SEED_COURSE]["results"] == [
        {"identifier": "New.Person@Example.com", "before": state(), "after": state(allowed=True, auto_enroll=auto_enroll)}
    ]
    assert Allowance.objects.get(course=seed_course, email_key="new.person@example.com").auto_enroll is auto_enroll


def test_unenroll_unknown_email_removes_its_allowance(seed_course, platform_admin):
    Allowance.objects.create(course=seed_course, email="later@example.com", auto_enroll=True)
    answer = bulk(api(platform_admin), action="unenroll", identifiers="later@example.com", courses=SEED_COURSE).json()
    assert answer["courses"][SEED_COURSE]["results"] == [
        {"identifier": "later@example.com", "before": state(allowed=True, auto_enroll=True), "after": state()}
    ]
    assert not Allowance.objects.filter(course=seed_course).exists()


def test_invalid_identifiers_are_flagged_and_the_rest_proceeds(seed_course, seed_user, platform_admin):
    response = bulk(api(platform_admin), identifiers="not-an-email@, nobody\ntestuser, testuser", courses=SEED_COURSE)

    results = response.json()["courses"][SEED_COURSE]["results"]
    assert [r["identifier"] for r in results] == ["not-an-email@", "nobody", "testuser"]  # duplicates once
    assert results[0] == {"identifier": "not-an-email@", "before": state(), "after": state(), "invalidIdentifier": True}
    assert results[1] == {"identifier": "nobody", "before": state(), "after": state(), "invalidIdentifier": True}
    assert results[2] == {"identifier": "testuser", "before": state(user=True), "after": state(user=True, enrollment=True)}


def test_several_courses_with_cohorts(course, course_b, staff_of_both):
    kim, lea = UserFactory(username="kim"), UserFactory(username="lea", email="lea@example.com")
    client = api(staff_of_both)

    response = bulk(
        client, identifiers="kim\nLEA@example.com, fresh@example.com", courses=f"{course.key}, {course_b.key}", cohorts="Red,Blue",
        create_cohorts=True,
    )

    assert response.status_code == 200, response.content
    answer = response.json()
    assert list(answer["courses"]) == [course.key, course_b.key]
    for key, cohort in ((course.key, "Red"), (course_b.key, "Blue")):
        assert answer["courses"][key]["action"] == "enroll"
        assert [r["after"] for r in answer["courses"][key]["results"]] == [
            {**state(user=True, enrollment=True), "cohort": cohort}, {**state(user=True, enrollment=True), "cohort": cohort},
            {**state(allowed=True, auto_enroll=True), "cohort": None},
        ]
    memberships = {(m.user.username, m.course.key, m.cohort.name) for m in CohortMembership.objects.select_related("user", "course", "cohort")}
    assert memberships == {("kim", course.key, "Red"), ("lea", course.key, "Red"), ("kim", course_b.key, "Blue"), ("lea", course_b.key, "Blue")}

    # Enrolling again into another cohort moves them (one cohort per course), and an
    # empty name leaves the second course's cohorts alone.
    response = bulk(client, identifiers="kim", courses=f"{course.key},{course_b.key}", cohorts="Green,", create_cohorts=True)
    assert response.status_code == 200, response.content
    assert CohortMembership.objects.get(user=kim, course=course).cohort.name == "Green"
    assert CohortMembership.objects.get(user=kim, course=course_b).cohort.name == "Blue"
    assert CohortMembership.objects.get(user=lea, course=course).cohort.name == "Red"
    assert set(Cohort.objects.filter(course=course).values_list("name", flat=True)) == {"Red", "Green"}


def test_form_data_with_string_booleans(seed_course, seed_user, platform_admin):
    response = api(platform_admin).post(
        BULK_URL,
        {"identifiers": "test-email@example.com\nnew@example.com", "action": "enroll", "auto_enroll": "True",
         "email_students": "1", "courses": SEED_COURSE, "reason": "Form"},
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    assert_same_shape(answer, SEED_BULK_ANSWER)
    assert answer["auto_enroll"] is True and answer["email_students"] is True
    assert EnrollmentAudit.objects.filter(course=seed_course, reason="Form", source=Source.API).count() == 2


def test_form_data_with_an_unencoded_course_key(seed_course, platform_admin):
    body = f"identifiers=x@example.com&action=enroll&courses={SEED_COURSE}"  # "+" not encoded: read as spaces
    response = api(platform_admin).post(BULK_URL, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.content
    assert list(response.json()["courses"]) == [SEED_COURSE]


@pytest.mark.parametrize("value", ["true", "True", "1", True])
def test_boolean_spellings(seed_course, platform_admin, value):
    answer = bulk(api(platform_admin), identifiers="x@example.com", courses=SEED_COURSE, auto_enroll=value).json()
    assert answer["auto_enroll"] is True


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"identifiers": None}, "identifiers"),
        ({"identifiers": " ,\n, "}, "identifiers"),
        ({"identifiers": "a\x00b"}, "identifiers"),
        ({"identifiers": [1]}, "identifiers"),
        ({"identifiers": []}, "identifiers"),
        ({"identifiers": ["a\x00b"]}, "identifiers"),
        ({"courses": [SEED_COURSE, None]}, "courses"),
        ({"courses": []}, "courses"),
        ({"cohorts": {"a": 1}}, "cohorts"),
        ({"cohorts": ["A", "B"]}, "cohorts"),
        ({"action": None}, "action"),
        ({"action": "subscribe"}, "action"),
        ({"courses": None}, "courses"),
        ({"courses": ""}, "courses"),
        ({"courses": "DemoX"}, "courses"),
        ({"courses": f"{SEED_COURSE},course-v1:bad key"}, "courses"),
        ({"auto_enroll": "maybe"}, "auto_enroll"),
        ({"email_students": "sometimes"}, "email_students"),
        ({"cohorts": "A,B"}, "cohorts"),
        ({"cohorts": "A", "action": "unenroll"}, "cohorts"),
        ({"cohorts": "x" * 256}, "cohorts"),
        ({"reason": "r" * 2001}, "reason"),
    ],
)
def test_malformed_body_is_a_400_naming_the_field(seed_course, platform_admin, changes, field):
    body = {"identifiers": "kim@example.com", "courses": SEED_COURSE, "action": "enroll", **changes}
    body = {k: v for k, v in body.items() if v is not None}
    response = api(platform_admin).post(BULK_URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert all(isinstance(m, str) and m for m in response.json()[field])
    assert nothing_written(seed_course)


def test_cohort_count_mismatch_is_worded_with_proper_plurals(seed_course, platform_admin):
    response = bulk(api(platform_admin), identifiers="kim@example.com", courses=SEED_COURSE, cohorts="A,B")
    assert response.json()["cohorts"] == ["Give one cohort name per course, in the same order: 1 course but 2 cohorts."]


def test_unparseable_json_is_a_400_with_a_message(seed_course, platform_admin):
    response = api(platform_admin).post(BULK_URL, data='{"identifiers": ', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_hostile_json_nesting_is_a_json_400_not_a_500(seed_course, platform_admin):
    # Issue 13: "[" x 100,000 used to crash the decoder (RecursionError) into an HTML 500.
    depth = 100_000
    response = api(platform_admin).post(BULK_URL, data="[" * depth + "]" * depth, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "nested too deeply" in response.json()["detail"]


def test_more_than_the_maximum_identifiers_is_a_400(seed_course, course, platform_admin, settings):
    settings.ENROLLMENT_MAX_IDENTIFIERS = 5
    client = api(platform_admin)
    response = bulk(client, identifiers=",".join(f"p{i}@example.com" for i in range(6)), courses=SEED_COURSE)
    assert response.status_code == 400
    assert "more than the 5" in response.json()["identifiers"][0]
    # counted over all courses: 3 identifiers in 2 courses is 6
    response = bulk(client, identifiers="a@example.com,b@example.com,c@example.com", courses=f"{SEED_COURSE},{course.key}")
    assert response.status_code == 400 and "identifiers" in response.json()
    assert nothing_written(seed_course, course)


def test_unknown_course_is_a_404_and_nothing_changes(course, staff_of_both, course_b):
    response = bulk(api(staff_of_both), identifiers="x@example.com", courses=f"{course.key},course-v1:Acme+Nope+2026,{course_b.key}")
    assert response.status_code == 404
    assert "course-v1:Acme+Nope+2026" in response.json()["detail"]
    assert nothing_written(course, course_b)


def test_a_course_the_caller_may_not_manage_is_a_403_and_nothing_changes(course, other_course, course_staff):
    # Staff of A asking for A and B: refused, and A is unchanged.
    UserFactory(username="kim")
    response = bulk(api(course_staff), identifiers="kim, x@example.com", courses=f"{course.key},{other_course.key}", cohorts="Red,Blue")
    assert response.status_code == 403
    assert other_course.key in response.json()["detail"] and course.key not in response.json()["detail"]
    assert nothing_written(course, other_course)


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("platform_admin", 200),
        ("course_admin", 200),
        ("course_staff", 200),
        ("other_staff", 403),
        ("learner", 403),
        (None, 401),
        ("bad_token", 401),
    ],
)
def test_bulk_permission_matrix(request, course, persona, status):
    if persona == "bad_token":
        client = api(token="Bearer not-a-token")
    else:
        client = api(request.getfixturevalue(persona) if persona else None)
    response = bulk(client, identifiers="someone@example.com", courses=course.key)
    assert response.status_code == status, response.content
    assert Allowance.objects.filter(course=course).exists() is (status == 200)


def test_session_posts_need_the_csrf_token(course, course_staff):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(course_staff)
    body = {"identifiers": "x@example.com", "courses": course.key, "action": "enroll"}
    refused = client.post(BULK_URL, body, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert nothing_written(course)
    client.get("/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post(BULK_URL, body, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200, accepted.content


def test_bulk_without_the_trailing_slash_works_too(seed_course, platform_admin):
    response = api(platform_admin).post(BULK_URL.rstrip("/"), {"identifiers": "x@example.com", "courses": SEED_COURSE, "action": "enroll"}, format="json")
    assert response.status_code == 200


def test_a_body_above_the_upload_limit_is_a_json_413(seed_course, platform_admin, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    identifiers = ",".join(f"person{i}@example.com" for i in range(200))
    client = api(platform_admin)
    for response in (
        bulk(client, identifiers=identifiers, courses=SEED_COURSE),
        client.post(BULK_URL, {"identifiers": identifiers, "courses": SEED_COURSE, "action": "enroll"}),
    ):
        assert response.status_code == 413
        assert response["Content-Type"] == "application/json"
        assert "2,000 bytes" in response.json()["detail"]
    assert nothing_written(seed_course)


def test_a_form_with_too_many_fields_is_a_json_400(seed_course, platform_admin, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = {"identifiers": "x@example.com", "courses": SEED_COURSE, "action": "enroll", **{f"extra{i}": "1" for i in range(20)}}
    response = api(platform_admin).post(BULK_URL, body)
    assert response.status_code == 400 and "too many fields" in response.json()["detail"]
    assert nothing_written(seed_course)


def test_all_courses_change_in_one_transaction(course, course_b, staff_of_both, monkeypatch):
    import enrollments.services.bulk_api as services

    real = services.enrollment_batch_update

    def fail_on_the_second_course(**kwargs):
        if kwargs["course"] == course_b:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "enrollment_batch_update", fail_on_the_second_course)
    with pytest.raises(RuntimeError):
        bulk(api(staff_of_both), identifiers="x@example.com", courses=f"{course.key},{course_b.key}")
    assert nothing_written(course, course_b)  # the first course was rolled back too


# --- throttling ------------------------------------------------------------------------


def test_throttled_per_token_with_retry_after(settings, seed_course, platform_admin, course_staff):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"enrollments_list": "3/min", "bulk_enroll": "2/min"},
    }
    admin_client, staff_client = api(platform_admin), api(course_staff)
    assert [admin_client.get(LIST_URL).status_code for _ in range(3)] == [200, 200, 200]
    limited = admin_client.get(LIST_URL)
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    assert "throttled" in limited.json()["detail"]
    assert staff_client.get(LIST_URL).status_code == 200  # another token has its own budget

    codes = [bulk(admin_client, identifiers="x@example.com", courses=SEED_COURSE).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# --- background jobs (202) -------------------------------------------------------------------


def test_above_the_sync_limit_the_answer_is_a_job_that_serves_the_same_json(
    settings, commit_callbacks, course, course_b, staff_of_both, platform_admin, learner
):
    UserFactory(username="kim")
    identifiers = "kim, lea@example.com\nbad@, nobody"
    client = api(staff_of_both)
    # The synchronous answer, on course_b, as the reference.
    sync = bulk(client, identifiers=identifiers, courses=course_b.key, cohorts="Red", create_cohorts=True).json()
    assert sync["courses"][course_b.key]["results"][0]["after"]["cohort"] == "Red"

    settings.ENROLLMENT_SYNC_LIMIT = 3
    with commit_callbacks():
        response = bulk(client, identifiers=identifiers, courses=course.key, cohorts="Red", create_cohorts=True)

    assert response.status_code == 202, response.content
    accepted = response.json()
    assert set(accepted) == {"job_id", "status", "url"}
    assert accepted["url"].startswith("http://testserver/api/bulk_enroll/v1/jobs/") and response["Location"] == accepted["url"]
    job_response = client.get(accepted["url"])
    assert job_response.status_code == 200
    job = job_response.json()
    assert job["status"] == "succeeded" and job["done"] == job["total"] == 4 and job["error"] == ""
    expected = json.loads(json.dumps(sync).replace(course_b.key, course.key))
    assert job["result"] == expected
    assert CohortMembership.objects.get(course=course, user__username="kim").cohort.name == "Red"
    assert EnrollmentAudit.objects.filter(course=course, source=Source.API).count() == 3  # kim enrolled and moved to Red, lea invited

    # Only the requester and platform admins may read it.
    assert api(platform_admin).get(accepted["url"]).status_code == 200
    assert api(learner).get(accepted["url"]).status_code == 404
    assert api().get(accepted["url"]).status_code == 401


def test_job_counts_identifiers_over_all_courses(settings, commit_callbacks, course, course_b, staff_of_both):
    settings.ENROLLMENT_SYNC_LIMIT = 3
    with commit_callbacks():
        response = bulk(api(staff_of_both), identifiers="a@example.com,b@example.com", courses=f"{course.key},{course_b.key}")
    assert response.status_code == 202
    job = BulkEnrollJob.objects.get()
    assert (job.status, job.done, job.total) == ("succeeded", 4, 4)
    assert set(job.result["courses"]) == {course.key, course_b.key}


def test_job_fails_with_its_reason_when_the_requester_lost_the_role(settings, course, course_staff):
    from courses.models import CourseRole
    from enrollments.services import bulk_enroll_job_create, bulk_enroll_job_run

    job = bulk_enroll_job_create(
        requester=course_staff, courses=[course], identifiers=["x@example.com"], action="enroll", auto_enroll=True, email_students=False
    )
    CourseRole.objects.filter(user=course_staff).delete()
    job = bulk_enroll_job_run(job_id=job.pk)
    assert job.status == "failed" and course.key in job.error
    assert nothing_written(course)
    assert bulk_enroll_job_run(job_id=job.pk) is None  # a second delivery does nothing


def test_job_in_chunks_gives_the_same_answer(settings, commit_callbacks, course, course_b, staff_of_both, monkeypatch):
    import enrollments.services.bulk_api as services

    for name in ("kim", "lea", "max"):
        UserFactory(username=name)
    identifiers = "kim, lea, a@example.com, nobody, max, b@example.com, bad@"
    client = api(staff_of_both)
    sync = bulk(client, identifiers=identifiers, courses=course_b.key).json()
    monkeypatch.setattr(services, "BATCH_CHUNK", 2)
    settings.ENROLLMENT_SYNC_LIMIT = 1
    with commit_callbacks():
        response = bulk(client, identifiers=identifiers, courses=course.key)
    job = client.get(response.json()["url"]).json()
    assert (job["status"], job["done"], job["total"]) == ("succeeded", 7, 7)
    assert job["result"] == json.loads(json.dumps(sync).replace(course_b.key, course.key))


def test_the_job_task_runs_on_the_bulk_queue():
    from enrollment_site.celery import app
    from enrollments.tasks import run_bulk_enroll_job

    assert run_bulk_enroll_job.name == "enrollments.tasks.run_bulk_enroll_job"
    assert app.conf.task_routes[run_bulk_enroll_job.name] == {"queue": "bulk"}


def test_a_job_whose_worker_is_lost_again_and_again_shows_as_failed(course_staff):
    from enrollment_site.celery import sweep_jobs
    from enrollment_site.lib.jobs import max_takeovers

    job = BulkEnrollJob.objects.create(
        requester=course_staff, status="running", total=10, heartbeat_at=timezone.now() - dt.timedelta(hours=2), takeovers=max_takeovers()
    )
    sweep_jobs()  # the beat's sweep (a GET never sweeps)
    body = api(course_staff).get(f"/api/bulk_enroll/v1/jobs/{job.public_id}/").json()
    assert body["status"] == "failed" and "worker" in body["error"] and body["result"] is None


def test_unknown_job_is_a_404(platform_admin):
    response = api(platform_admin).get("/api/bulk_enroll/v1/jobs/6f1c1f5e-8a57-4c43-9a0e-0d6f3b7c2a11/")
    assert response.status_code == 404 and response.json()["detail"]


# --- query counts ---------------------------------------------------------------------------


@postgres_only
def test_bulk_enroll_takes_the_same_queries_for_10_and_1000_identifiers(course, course_b, platform_admin):
    client = api(platform_admin)
    # warm up: caches, the token, and the cohorts (created once)
    assert bulk(client, identifiers="warm@example.com", courses=f"{course.key},{course_b.key}", cohorts="Red,Blue", create_cohorts=True).status_code == 200

    def run(size, tag):
        users = User.objects.bulk_create(
            [User(username=f"{tag}{i}", email=f"{tag}{i}@example.com") for i in range(size // 2)]
        )
        identifiers = [u.username for u in users] + [f"new-{tag}{i}@example.com" for i in range(size - len(users))]
        with CaptureQueriesContext(connection) as queries:
            response = bulk(
                client, identifiers="\n".join(identifiers), courses=f"{course.key},{course_b.key}", cohorts="Red,Blue", email_students=True
            )
        assert response.status_code == 200, response.content
        assert sum(len(c["results"]) for c in response.json()["courses"].values()) == 2 * size
        return len(queries)

    small, large = run(10, "s"), run(1000, "l")
    assert small == large, (small, large)
    assert Enrollment.objects.filter(course=course_b, user__username__startswith="l").count() == 500


# --- a real HTTP server, as an integrator calls it -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_live_server_client_with_a_bearer_token(live_server):
    course = Course.objects.create(key=SEED_COURSE, display_name="Demo course")
    admin = PlatformAdminFactory(username="integrator")
    UserFactory(username="testuser", email="test-email@example.com")
    token = Token.objects.create(user=admin).key
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    response = session.post(
        live_server.url + BULK_URL,
        data=json.dumps({"identifiers": "test-email@example.com,new@example.com", "action": "enroll",
                         "auto_enroll": True, "email_students": False, "courses": SEED_COURSE}),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_same_shape(answer, SEED_BULK_ANSWER)
    assert answer["courses"][SEED_COURSE]["results"][0]["after"] == state(user=True, enrollment=True)

    listing = session.get(live_server.url + LIST_URL, params={"course_id": SEED_COURSE}, timeout=30)
    assert listing.status_code == 200
    assert [(r["username"], r["course_id"], r["is_active"], r["mode"]) for r in listing.json()["results"]] == [
        ("testuser", SEED_COURSE, True, course.default_mode)
    ]

    assert requests.get(live_server.url + LIST_URL, timeout=30).status_code == 401
    assert requests.get(live_server.url + LIST_URL, headers={"Authorization": "Bearer nope"}, timeout=30).status_code == 401
