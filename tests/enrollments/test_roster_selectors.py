"""The course roster's reads (enrollments.selectors.roster): search, filters,
sort, the keyset cursor, the count, and their query counts at two sizes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from courses.models import CohortMembership
from enrollments.models import Enrollment, Source
from enrollments.selectors.roster import InvalidCursor, RosterQuery, roster_count, roster_page, roster_rows

from ..factories import CohortFactory, CourseFactory, EnrollmentFactory, UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db


def usernames(rows) -> list[str]:
    return [e.user.username for e in rows]


def rows_for(course, **query) -> list[str]:
    return usernames(roster_rows(course=course, query=RosterQuery(**query)))


@pytest.fixture
def people(course):
    """Four learners of ``course`` (and one of another course who must never show)."""
    base = timezone.make_aware(dt.datetime(2026, 3, 10, 12, 0))
    specs = [
        ("annsmith", "ann.smith@acme.org", "Ann", "Smith", "verified", Source.CODE, True, base - dt.timedelta(days=9)),
        ("bob", "bob.jones@example.com", "Bob", "Jones", "audit", Source.BATCH, True, base - dt.timedelta(days=5)),
        ("carol_x", "carol@example.com", "Carol", "Annersley", "audit", Source.CODE, False, base - dt.timedelta(days=2)),
        ("dave", "d100%@example.com", "Dave", "Marsh", "audit", Source.SELF, True, base),
    ]
    made = {}
    for username, email, first, last, mode, source, active, created in specs:
        user = UserFactory(username=username, email=email, first_name=first, last_name=last)
        made[username] = EnrollmentFactory(user=user, course=course, mode=mode, source=source, is_active=active, created=created)
    EnrollmentFactory(course=CourseFactory(), user=UserFactory(username="annother", first_name="Ann", last_name="Other"))
    return made


def test_no_query_lists_the_course_newest_first(course, people):
    assert rows_for(course) == ["dave", "carol_x", "bob", "annsmith"]
    assert roster_count(course=course, query=RosterQuery()) == 4


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ann", ["carol_x", "annsmith"]),  # a username prefix, and a substring of a last name
        ("ANN.SM", ["annsmith"]),  # an email prefix, any case
        ("@example.com", ["dave", "carol_x", "bob"]),  # an email substring
        ("carol ANNERS", ["carol_x"]),  # several words: all must match, anywhere in the name
        ("ann smith", ["annsmith"]),  # first and last name typed as the full name
        ("bob smith", []),
        ("100%", ["dave"]),  # % matched literally, not as a wildcard
        ("_x", ["carol_x"]),  # and _ too
        ("%", ["dave"]),
        ("a_b", []),
        ("'; drop table x; --", []),
        ("(.*)", []),
    ],
)
def test_search_matches_part_of_username_email_or_full_name(course, people, search, expected):
    assert rows_for(course, search=search) == expected


def test_filters_combine(course, people):
    cohort = CohortFactory(course=course, name="Group A")
    CohortMembership.objects.create(cohort=cohort, course=course, user=people["bob"].user)
    CohortMembership.objects.create(cohort=cohort, course=course, user=people["dave"].user)
    assert rows_for(course, status="active") == ["dave", "bob", "annsmith"]
    assert rows_for(course, status="unenrolled") == ["carol_x"]
    assert rows_for(course, mode="verified") == ["annsmith"]
    assert rows_for(course, source=Source.CODE) == ["carol_x", "annsmith"]
    assert rows_for(course, cohort=cohort) == ["dave", "bob"]
    assert rows_for(course, no_cohort=True) == ["carol_x", "annsmith"]
    assert rows_for(course, source=Source.CODE, status="active") == ["annsmith"]
    assert rows_for(course, cohort=cohort, search="jones") == ["bob"]


def test_the_date_range_takes_whole_days_in_the_site_time_zone(course, people, settings):
    day = timezone.localtime(people["bob"].created).date()
    assert rows_for(course, enrolled_from=day, enrolled_to=day) == ["bob"]
    assert rows_for(course, enrolled_from=day) == ["dave", "carol_x", "bob"]
    assert rows_for(course, enrolled_to=day) == ["bob", "annsmith"]
    assert rows_for(course, enrolled_to=day - dt.timedelta(days=100)) == []


def test_the_date_range_follows_the_configured_time_zone(course, settings):
    settings.TIME_ZONE = "Pacific/Auckland"  # 13 hours ahead of UTC in March
    late = EnrollmentFactory(course=course, created=dt.datetime(2026, 3, 9, 12, 0, tzinfo=ZoneInfo("UTC")))  # 10 March, 01:00 there
    assert rows_for(course, enrolled_from=dt.date(2026, 3, 10), enrolled_to=dt.date(2026, 3, 10)) == [late.user.username]
    assert rows_for(course, enrolled_to=dt.date(2026, 3, 9)) == []


def test_cohort_name_comes_with_each_row(course, people):
    cohort = CohortFactory(course=course, name="Group A")
    other = CohortFactory(name="Elsewhere")  # the same learner's cohort in another course is not this course's
    CohortMembership.objects.create(cohort=cohort, course=course, user=people["bob"].user)
    CohortMembership.objects.create(cohort=other, course=other.course, user=people["dave"].user)
    cohorts = {e.user.username: e.cohort_name for e in roster_rows(course=course, query=RosterQuery())}
    assert cohorts == {"annsmith": None, "bob": "Group A", "carol_x": None, "dave": None}


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-created", ["dave", "carol_x", "bob", "annsmith"]),
        ("created", ["annsmith", "bob", "carol_x", "dave"]),
        ("username", ["annsmith", "bob", "carol_x", "dave"]),
        ("-username", ["dave", "carol_x", "bob", "annsmith"]),
        ("email", ["annsmith", "bob", "carol_x", "dave"]),
        ("mode", ["bob", "carol_x", "dave", "annsmith"]),  # ties by id, in the same direction
        ("-mode", ["annsmith", "dave", "carol_x", "bob"]),
    ],
)
def test_sorts(course, people, sort, expected):
    assert rows_for(course, sort=sort) == expected


def test_sort_by_last_change(course, people):
    Enrollment.objects.filter(pk=people["bob"].pk).update(updated=timezone.now() + dt.timedelta(hours=1))
    assert rows_for(course, sort="-updated")[0] == "bob"
    assert rows_for(course, sort="updated")[-1] == "bob"


def _walk(course, query, page_size):
    """Every page forward from the first, then every page back from the last."""
    forward, pages = [], []
    page = roster_page(course=course, query=query, page_size=page_size)
    assert page.previous_cursor is None
    while True:
        pages.append(page)
        forward += usernames(page.rows)
        if page.next_cursor is None:
            break
        page = roster_page(course=course, query=query, cursor=page.next_cursor, page_size=page_size)
    backward = usernames(page.rows)
    while page.previous_cursor is not None:
        page = roster_page(course=course, query=query, cursor=page.previous_cursor, page_size=page_size)
        backward = usernames(page.rows) + backward
    return forward, backward, pages


@pytest.mark.parametrize("sort", ["-created", "created", "username", "-email", "mode", "-mode", "updated"])
def test_the_cursor_walks_every_row_once_both_ways_even_through_ties(course, sort):
    # One batch enrolls thousands with the same timestamp and mode: ties the cursor must not lose or repeat.
    same = timezone.now()
    users = User.objects.bulk_create([User(username=f"tie{i:02}", email=f"tie{i:02}@example.com") for i in range(23)])
    Enrollment.objects.bulk_create(
        [Enrollment(user=u, course=course, created=same, mode="audit" if i % 3 else "verified") for i, u in enumerate(users)]
    )
    Enrollment.objects.filter(course=course).update(updated=same)
    query = RosterQuery(sort=sort)
    expected = rows_for(course, sort=sort)
    forward, backward, pages = _walk(course, query, page_size=5)
    assert forward == expected
    assert backward == expected
    assert [len(p.rows) for p in pages] == [5, 5, 5, 5, 3]
    assert all(p.total == 23 for p in pages)


def test_going_back_from_the_second_page_gives_the_first(course):
    for _ in range(7):
        EnrollmentFactory(course=course)
    first = roster_page(course=course, query=RosterQuery(), page_size=3)
    second = roster_page(course=course, query=RosterQuery(), cursor=first.next_cursor, page_size=3)
    back = roster_page(course=course, query=RosterQuery(), cursor=second.previous_cursor, page_size=3)
    assert [e.pk for e in back.rows] == [e.pk for e in first.rows]
    assert back.previous_cursor is None and back.next_cursor is not None


@pytest.mark.parametrize("cursor", ["junk", "eyJzIjoiLWNyZWF0ZWQifQ", "W10", "eyJzIjoiLWNyZWF0ZWQiLCJ2IjoiMjAyNi0xMy0wMSIsImkiOjF9", "e30"])
def test_a_cursor_it_did_not_write_is_refused(course, cursor):
    with pytest.raises(InvalidCursor):
        roster_page(course=course, query=RosterQuery(), cursor=cursor)


def test_a_cursor_of_another_sort_is_refused(course):
    for _ in range(3):
        EnrollmentFactory(course=course)
    page = roster_page(course=course, query=RosterQuery(sort="username"), page_size=1)
    with pytest.raises(InvalidCursor, match="another sort"):
        roster_page(course=course, query=RosterQuery(sort="-created"), cursor=page.next_cursor)


@pytest.mark.parametrize(
    "query",
    [
        RosterQuery(),
        RosterQuery(search="user", status="active", mode="audit", source=Source.BATCH, sort="username"),
        RosterQuery(no_cohort=True, enrolled_from=dt.date(2000, 1, 1), sort="-updated"),
    ],
)
def test_a_page_is_two_queries_whatever_the_size_of_the_course(course, query):
    """One for the rows (users and cohort names joined in), one COUNT: the same at 12 and at 120 rows, first page or later."""
    counts = []
    for size in (12, 120):
        users = User.objects.bulk_create([User(username=f"user{size}-{i}", email=f"user{size}-{i}@example.com") for i in range(size)])
        Enrollment.objects.bulk_create([Enrollment(user=u, course=course) for u in users])
        cohort = CohortFactory(course=course)
        CohortMembership.objects.bulk_create([CohortMembership(cohort=cohort, course=course, user=u) for u in users[::2]])
        with CaptureQueriesContext(connection) as first:
            page = roster_page(course=course, query=query, page_size=10)
            [(e.user.username, e.cohort_name) for e in page.rows]
        with CaptureQueriesContext(connection) as later:
            page = roster_page(course=course, query=query, cursor=page.next_cursor or "", page_size=10)
            [(e.user.username, e.cohort_name) for e in page.rows]
        counts.append((len(first), len(later)))
    assert counts == [(2, 2), (2, 2)]
    assert "OFFSET" not in later.captured_queries[0]["sql"].upper()
