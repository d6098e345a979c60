"""GET /api/so2/v1/enrollments at any size (issue 16): every persona and filter
walked page by page against a brute-force listing of the same data, the JSON
byte for byte what the documented serializer gives, and the query count the
same for a course of 10 and of 2,000 enrollments."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from accounts.rules import is_platform_admin
from courses.models import CourseRole
from enrollments.api.serializers import EnrollmentSerializer
from enrollments.models import Enrollment
from tests.factories import CourseFactory, CourseRoleFactory, UserFactory

User = get_user_model()
LIST_URL = "/api/so2/v1/enrollments"

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def world(course, other_course, platform_admin, course_admin, course_staff, other_staff, learner):
    """Three courses; a team member of two of them; people enrolled in several
    courses, a team member among them (enrolled in a course they manage and in
    one they do not); a batch of rows sharing one timestamp; rows old and new,
    active and not, in two modes. Returns the personas by name."""
    third = CourseFactory(key="course-v1:Acme+THIRD+2026")
    both = CourseRoleFactory(course=course, role=CourseRole.Role.ADMIN, user=UserFactory(username="adminofboth")).user
    CourseRoleFactory(course=other_course, role=CourseRole.Role.STAFF, user=both)
    now = timezone.now()
    batch = now - dt.timedelta(days=3, minutes=7)  # one batch: many rows, one ``created``
    people = [UserFactory(username=f"p{i:02d}") for i in range(14)]
    rows = []
    for i, person in enumerate(people):
        for j, c in enumerate((course, other_course, third)):
            if (i + j) % 3 == 2:
                continue
            created = batch if (i + j) % 4 == 0 else now - dt.timedelta(days=(i * 5 + j * 3) % 40, hours=i)
            rows.append(Enrollment(user=person, course=c, created=created, is_active=(i + j) % 5 != 0,
                                   mode="verified" if i % 3 == 0 else "audit"))
    rows += [
        Enrollment(user=course_staff, course=course, created=now - dt.timedelta(days=1)),  # in the course they manage
        Enrollment(user=course_staff, course=third, created=batch),  # and elsewhere
        Enrollment(user=both, course=course, created=batch),
        Enrollment(user=both, course=third, created=now - dt.timedelta(days=20)),
        Enrollment(user=learner, course=course, created=now - dt.timedelta(days=2)),
        Enrollment(user=learner, course=third, created=batch),
    ]
    Enrollment.objects.bulk_create(rows)
    return {"platform_admin": platform_admin, "course_admin": course_admin, "course_staff": course_staff,
            "other_staff": other_staff, "admin_of_both": both, "learner": learner}


def expected(user, *, course_key="", username="", days=None) -> list[Enrollment]:
    """By brute force: every enrollment, filtered in Python, newest first."""
    managed = set(CourseRole.objects.filter(user=user).values_list("course_id", flat=True))
    since = timezone.now() - dt.timedelta(days=days) if days is not None else None
    rows = [
        e for e in Enrollment.objects.select_related("user", "course")
        if (is_platform_admin(user) or e.course_id in managed or e.user_id == user.pk)
        and (not course_key or e.course.key == course_key)
        and (not username or e.user.username == username)
        and (since is None or e.created >= since)
    ]
    return sorted(rows, key=lambda e: (e.created, e.pk), reverse=True)


FILTERS = [
    {},
    {"course_id": "course-v1:Acme+ENR101+2026"},
    {"course_id": "course-v1:Acme+OTHER+2026"},
    {"course_id": "course-v1:Acme+THIRD+2026"},
    {"course_id": "course-v1:Acme+ENR101+2026", "days": 10},
    {"days": 10},
    {"username": "p03"},
    {"username": "coursestaff"},
    {"username": "p04", "course_id": "course-v1:Acme+THIRD+2026", "days": 30},
]
PERSONAS = ["platform_admin", "course_admin", "course_staff", "other_staff", "admin_of_both", "learner"]


def walk(client, params: dict) -> list:
    """Every page by ``next``, then back from the last one by ``previous``;
    checks that both ways give the same pages. Returns the pages' responses."""
    pages, url = [], LIST_URL
    while url:
        response = client.get(url, {**params, "page_size": 4} if url == LIST_URL else None)
        assert response.status_code == 200, response.content
        pages.append(response)
        url = response.json()["next"]
    back = [pages[-1].json()]
    while back[-1]["previous"]:
        back.append(client.get(back[-1]["previous"]).json())
    assert [p["results"] for p in reversed(back)] == [p.json()["results"] for p in pages]
    return pages


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_page_equals_the_brute_force_listing(world, persona):
    user = world[persona]
    client = api(user)
    for params in FILTERS:
        pages = walk(client, params)
        want = expected(user, course_key=params.get("course_id", ""), username=params.get("username", ""), days=params.get("days"))
        got = [(item["username"], item["course_id"]) for page in pages for item in page.json()["results"]]
        assert got == [(e.user.username, e.course.key) for e in want], (persona, params)
        for number, page in enumerate(pages):
            # Byte for byte what the documented serializer makes of the same rows.
            body = page.json()
            rows = want[number * 4 : number * 4 + 4]
            assert page.content == JSONRenderer().render(
                {"next": body["next"], "previous": body["previous"], "results": EnrollmentSerializer(rows, many=True).data}
            ), (persona, params, number)


def test_the_time_is_written_in_the_sites_zone(world, settings, platform_admin):
    settings.TIME_ZONE = "America/St_Johns"  # a half-hour offset, so that the minutes differ from UTC's
    results = api(platform_admin).get(LIST_URL, {"page_size": 1000}).json()["results"]
    rows = expected(platform_admin)
    assert results == EnrollmentSerializer(rows, many=True).data
    assert results[0]["created"] != rows[0].created.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def test_a_team_member_sees_an_own_enrollment_in_a_managed_course_once(world):
    staff = world["course_staff"]
    keys = [(r["username"], r["course_id"]) for r in api(staff).get(LIST_URL, {"page_size": 1000}).json()["results"]]
    assert keys.count(("coursestaff", "course-v1:Acme+ENR101+2026")) == 1
    assert ("coursestaff", "course-v1:Acme+THIRD+2026") in keys  # own, in a course not managed
    assert not any(key == "course-v1:Acme+OTHER+2026" for _, key in keys)


def _fill(course, size: int) -> None:
    """``size`` learners enrolled in ``course``, set-based; one a minute, newest now."""
    Enrollment.objects.filter(course=course).exclude(user__course_roles__course=course).delete()
    now = timezone.now()
    users = User.objects.bulk_create([User(username=f"n{size}-{i}", email=f"n{size}-{i}@example.com") for i in range(size)])
    Enrollment.objects.bulk_create(
        [Enrollment(user=u, course=course, created=now - dt.timedelta(minutes=i)) for i, u in enumerate(users)]
    )


@pytest.mark.parametrize("persona", ["platform_admin", "course_admin", "admin_of_both", "learner"])
def test_queries_do_not_grow_with_the_course(world, course, persona):
    user = world[persona]
    client = api(user)
    counts: dict[str, list[int]] = {}
    client.get(LIST_URL)  # the token's query; then it is served from the cache
    for size in (10, 2000):
        _fill(course, size)
        for params in [*FILTERS, {"course_id": course.key, "page_size": 1000}]:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(LIST_URL, params)
            assert response.status_code == 200
            counts.setdefault(str(params), []).append(len(captured))
        if persona != "learner":
            assert len(response.json()["results"]) == min(size + 2, 1000)  # the learners and the course's team
    # The page alone, for every persona and filter.
    expected = {str(params): [1, 1] for params in [*FILTERS, {"course_id": course.key, "page_size": 1000}]}
    assert counts == expected


def _scans(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


@pytest.mark.postgresql
@pytest.mark.parametrize("params", [{}, {"course_key": "course-v1:Acme+OTHER+2026"}, {"username": "p03"}])
def test_a_team_members_page_is_read_from_each_courses_index(world, params):
    """The shape that stays flat at a million rows: every read of enrollments
    an index range (of a course, or of the person's own rows), not a walk over
    every enrollment filtered by a subplan. Sequential scans are switched off,
    as a big table would rule them out, so that the plan shows the indexes."""
    from enrollments.selectors.api_list import enrollment_list_page

    with CaptureQueriesContext(connection) as captured:
        enrollment_list_page(user=world["admin_of_both"], limit=101, after=(timezone.now(), 10**9), **params)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + captured.captured_queries[-1]["sql"])
        plan = cursor.fetchone()[0][0]["Plan"]
    nodes = list(_scans(plan))
    reads = [node for node in nodes if node.get("Relation Name") == "enrollments_enrollment"]
    # Each an index range on the course or on the person, never a walk over every course's rows.
    conditions = [node.get("Index Cond") or node.get("Recheck Cond") or "" for node in reads]
    assert reads and all("course_id" in c or "user_id" in c for c in conditions), conditions
    assert not any(node.get("Index Name") == "enrollment_created" for node in nodes)


# --- enrollment periods (issue 18): status, access_from, access_until, and the status filter ---------


@pytest.fixture
def periods_world(course, platform_admin):
    """One enrollment of each kind of period, named by its username."""
    now = timezone.now()
    day = dt.timedelta(days=1)
    kinds = {
        "open": {},  # no period: what every enrollment before periods looks like
        "current": {"access_from": now - day, "access_until": now + day},
        "upcoming": {"access_from": now + day},
        "ended": {"access_until": now - day},  # the expiry task has not run yet
        "ended-and-closed": {"access_until": now - day, "is_active": False},
        "unenrolled": {"is_active": False, "access_until": now + day},
    }
    Enrollment.objects.bulk_create([
        Enrollment(user=UserFactory(username=name), course=course, created=now - dt.timedelta(minutes=i), **fields)
        for i, (name, fields) in enumerate(kinds.items())
    ])
    return api(platform_admin)


def test_each_item_has_its_status_and_period_as_periods_say(periods_world, settings):
    settings.TIME_ZONE = "America/St_Johns"
    from enrollments import periods

    items = {item["username"]: item for item in periods_world.get(LIST_URL).json()["results"]}
    assert {name: item["status"] for name, item in items.items()} == {
        "open": "active", "current": "active", "upcoming": "upcoming", "ended": "expired",
        "ended-and-closed": "expired", "unenrolled": "inactive",
    }
    zone = timezone.get_current_timezone()
    for enrollment in Enrollment.objects.select_related("user"):
        item = items[enrollment.user.username]
        assert item["status"] == periods.status(is_active=enrollment.is_active, access_from=enrollment.access_from,
                                                access_until=enrollment.access_until, now=timezone.now())
        for field in ("access_from", "access_until"):
            moment = getattr(enrollment, field)
            assert item[field] == (moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else None)


@pytest.mark.parametrize(
    ("status", "names"),
    [("active", ["open", "current"]), ("upcoming", ["upcoming"]), ("expired", ["ended", "ended-and-closed"]),
     ("inactive", ["unenrolled"]), ("", ["open", "current", "upcoming", "ended", "ended-and-closed", "unenrolled"])],
)
def test_the_status_filter_gives_exactly_the_rows_of_that_status(periods_world, status, names):
    response = periods_world.get(LIST_URL, {"status": status, "page_size": 1})
    got = []
    while True:
        assert response.status_code == 200, response.content
        got += [item["username"] for item in response.json()["results"]]
        if not response.json()["next"]:
            break
        response = periods_world.get(response.json()["next"])
    assert got == names


@pytest.mark.parametrize("status", ["Active", "enrolled", "active,expired", "\x00"])
def test_an_unknown_status_is_a_400_naming_the_values(periods_world, status):
    response = periods_world.get(LIST_URL, {"status": status})
    assert response.status_code == 400
    message = response.json()["status"][0]
    assert "active" in message and "upcoming" in message and "expired" in message and "inactive" in message or "Null" in message


def test_old_clients_see_the_seeds_fields_unchanged(periods_world):
    """An enrollment without a period answers the seed's six fields with their
    old values, in their old order; the new fields come after them."""
    enrollment = Enrollment.objects.select_related("user", "course").get(user__username="open")
    item = next(i for i in periods_world.get(LIST_URL).json()["results"] if i["username"] == "open")
    assert list(item)[:6] == ["username", "email", "course_id", "is_active", "mode", "created"]
    assert {key: item[key] for key in list(item)[:6]} == {
        "username": "open", "email": enrollment.user.email, "course_id": enrollment.course.key, "is_active": True,
        "mode": enrollment.mode, "created": timezone.localtime(enrollment.created).strftime("%Y-%m-%d %H:%M"),
    }
    assert (item["access_from"], item["access_until"], item["status"]) == (None, None, "active")
