import csv
import datetime
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from codes.models import CodeBatch, EnrollmentCode, Redemption, Status
from codes.services import code_batch_generate
from enrollments.models import Enrollment
from organisations.models import GroupMembership

from ..factories import CourseFactory, UserFactory
from .factories import EnrollmentCodeFactory, GroupFactory, RedemptionFactory

pytestmark = pytest.mark.django_db


def codes_url(course):
    return reverse("instructor_codes", kwargs={"course_key": course.key})


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- the Codes tab --------------------------------------------------------------------

def test_codes_tab_preselects_the_course_and_offers_only_managed_courses(client_for, course, course_staff, other_course):
    response = client_for(course_staff).get(codes_url(course))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["courses"] == [course]
    assert list(form.fields["courses"].queryset) == [course]
    html = response.content.decode()
    assert 'id="generate-codes-form"' in html and other_course.key not in html


def test_generate_shows_the_codes_with_copy_all(client_for, course, course_staff):
    client = client_for(course_staff)
    response = client.post(codes_url(course), {"courses": [course.pk], "count": 5, "prefix": "spring26", "uses_mode": "single"})
    batch = CodeBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{codes_url(course)}?batch={batch.pk}"
    page = client.get(response["Location"])
    html = page.content.decode()
    codes = list(batch.codes.values_list("code", flat=True))
    assert len(codes) == 5 and all(c.startswith("SPRING26-") for c in codes)
    panel = re.search(r'<pre[^>]*id="generated-codes">(.*?)</pre>', html, re.S).group(1)
    assert sorted(panel.split()) == sorted(codes)
    assert 'data-copy-target="#generated-codes"' in html and "Copy all" in html
    # The panel is shown once; the table keeps the codes.
    again = client.get(codes_url(course)).content.decode()
    assert 'id="generated-codes"' not in again and all(c in again for c in codes)


def test_generate_options_from_the_form(client_for, course, course_staff):
    client_for(course_staff).post(
        codes_url(course),
        {"courses": [course.pk], "count": 2, "uses_mode": "multi", "max_uses": 30, "expires_on": "2099-01-31"},
    )
    code = EnrollmentCode.objects.first()
    assert code.max_uses == 30
    assert code.expires_on == datetime.date(2099, 1, 31)
    client_for(course_staff).post(codes_url(course), {"courses": [course.pk], "count": 1, "uses_mode": "unlimited"})
    assert EnrollmentCode.objects.order_by("-id").first().max_uses is None


@pytest.mark.parametrize(
    "data",
    [
        {"count": 0},
        {"count": 501},
        {"prefix": "A" * 21},
        {"prefix": "bad prefix!"},
        {"courses": []},
        {"uses_mode": "multi", "max_uses": ""},
        {"expires_on": "2000-01-01"},
    ],
)
def test_generate_form_errors_create_nothing(client_for, course, course_staff, data):
    payload = {"courses": [course.pk], "count": 5, "prefix": "", "uses_mode": "single", **data}
    response = client_for(course_staff).post(codes_url(course), payload)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not CodeBatch.objects.exists() and not EnrollmentCode.objects.exists()


def test_staff_cannot_generate_for_a_course_they_do_not_manage(client_for, course, course_staff, other_course):
    response = client_for(course_staff).post(codes_url(course), {"courses": [course.pk, other_course.pk], "count": 1, "uses_mode": "single"})
    assert response.status_code == 400 and "courses" in response.context["form"].errors
    assert not CodeBatch.objects.exists()


def test_leader_cannot_generate_for_a_group_they_do_not_lead(client_for):
    leader = UserFactory()
    mine, theirs = GroupFactory(leaders=[leader]), GroupFactory()
    response = client_for(leader).post(
        reverse("group_codes_page", kwargs={"group_id": mine.pk}), {"groups": [mine.pk, theirs.pk], "count": 1, "uses_mode": "single"}
    )
    assert response.status_code == 400 and "groups" in response.context["form"].errors
    assert not CodeBatch.objects.exists()


def test_table_shows_uses_expiry_status_and_filters_by_batch(client_for, course, course_staff):
    first = code_batch_generate(actor=course_staff, courses=[course], count=3, max_uses=1)
    second = code_batch_generate(actor=course_staff, courses=[course], count=2, max_uses=None, expires_on=timezone.localdate() + datetime.timedelta(days=2))
    used = first.codes.first()
    EnrollmentCode.objects.filter(pk=used.pk).update(uses=1)
    client = client_for(course_staff)
    html = client.get(codes_url(course)).content.decode()
    row = re.search(rf'<tr data-code="{used.code}">(.*?)</tr>', html, re.S).group(1)
    assert "1 / 1" in row and "Used" in row
    assert html.count("<tr data-code=") == 5

    filtered = client.get(codes_url(course), {"batch": second.pk})
    assert {c.pk for c in filtered.context["page"].rows} == set(second.codes.values_list("pk", flat=True))
    row = re.search(r'<tr data-code="[^"]+">(.*?)</tr>', filtered.content.decode(), re.S).group(1)
    assert "0 / unlimited" in row and "Active" in row
    assert (timezone.now() + datetime.timedelta(days=2)).strftime("%Y-%m-%d") in row

    by_status = client.get(codes_url(course), {"status": Status.USED})
    assert [c.pk for c in by_status.context["page"].rows] == [used.pk]


def test_table_hides_codes_of_other_courses_and_ignores_foreign_batch_filter(client_for, course, course_staff, other_course):
    mine = EnrollmentCodeFactory(courses=[course])
    theirs = EnrollmentCodeFactory(courses=[other_course])
    response = client_for(course_staff).get(codes_url(course), {"batch": theirs.batch_id})
    assert [c.pk for c in response.context["page"].rows] == [mine.pk]
    assert theirs.code not in response.content.decode()


def _link(html: str, text: str) -> str:
    """The href of the pagination link named ``text``, unescaped."""
    return re.search(rf'href="([^"]*)"[^>]*>{text}</a>', html).group(1).replace("&amp;", "&")


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-code="([^"]+)">', html)


def test_table_pages_by_keyset_newest_first(client_for, course, course_staff):
    batch = code_batch_generate(actor=course_staff, courses=[course], count=120)
    newest_first = list(batch.codes.order_by("-id").values_list("code", flat=True))
    client = client_for(course_staff)
    url = codes_url(course)
    first = client.get(url).content.decode()
    assert _rows(first) == newest_first[:50]
    assert "120 codes, 50 a page, newest first." in first
    assert ">Newer<" not in first and ">Newest<" not in first
    second = client.get(url + _link(first, "Older")).content.decode()
    assert _rows(second) == newest_first[50:100]
    third = client.get(url + _link(second, "Older")).content.decode()
    assert _rows(third) == newest_first[100:]
    assert ">Older<" not in third and ">Oldest<" not in third
    assert _rows(client.get(url + _link(third, "Newer")).content.decode()) == newest_first[50:100]
    assert _rows(client.get(url + _link(third, "Newest")).content.decode()) == newest_first[:50]
    # Oldest: the last rows, as cheaply as the first.
    oldest = client.get(url + _link(first, "Oldest")).content.decode()
    assert _rows(oldest) == newest_first[70:]
    assert _rows(client.get(url + _link(oldest, "Newer")).content.decode()) == newest_first[20:70]


def _page_queries(client, url, query) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, query)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("scope_kind", ["course", "group", "all"])
def test_a_deep_page_costs_what_the_first_does_and_nothing_counts_the_codes(client_for, course, course_staff, platform_admin, scope_kind):
    group = GroupFactory(leaders=[course_staff])
    for _ in range(3):
        code_batch_generate(actor=course_staff, courses=[course], groups=[group], count=110)
    url, user = {
        "course": (codes_url(course), course_staff),
        "group": (reverse("group_codes_page", kwargs={"group_id": group.pk}), course_staff),
        "all": (reverse("all_codes_page"), platform_admin),
    }[scope_kind]
    client = client_for(user)
    client.get(url)  # the session's first request
    html = client.get(url).content.decode()
    assert "330 codes" in html
    for _ in range(5):
        html = client.get(url + _link(html, "Older")).content.decode()
    deep = parse_qs(urlsplit(_link(html, "Newer")).query)["cursor"][0]
    first_queries = _page_queries(client, url, {})
    deep_queries = _page_queries(client, url, {"cursor": deep})
    assert len(deep_queries) == len(first_queries)
    counting_codes = [sql for sql in first_queries + deep_queries if "COUNT(" in sql.upper() and "codes_enrollmentcode" in sql]
    assert counting_codes == []
    assert not any("OFFSET" in sql.upper() for sql in deep_queries)


def test_counts_by_batch_and_status_without_reading_every_code(client_for, course, course_staff, monkeypatch):
    monkeypatch.setattr("codes.selectors.COUNT_LIMIT", 4)
    batch = code_batch_generate(actor=course_staff, courses=[course], count=3, max_uses=1)
    code_batch_generate(actor=course_staff, courses=[course], count=6, max_uses=1)
    EnrollmentCode.objects.filter(pk=batch.codes.first().pk).update(uses=1)
    client = client_for(course_staff)
    count = lambda query: re.search(r'id="codes-count">([^<]*)<', client.get(codes_url(course), query).content.decode()).group(1)  # noqa: E731
    assert count({}) == "9 codes."
    assert count({"batch": batch.pk}) == "3 codes."
    assert count({"status": "used"}) == "1 code."
    assert count({"status": "active"}) == "More than 4 codes."
    assert count({"batch": batch.pk, "status": "active"}) == "2 codes."


def test_an_old_page_number_address_lands_on_the_same_page(client_for, course, course_staff):
    batch = code_batch_generate(actor=course_staff, courses=[course], count=120, max_uses=1)
    newest_first = list(batch.codes.order_by("-id").values_list("code", flat=True))
    client = client_for(course_staff)
    response = client.get(codes_url(course), {"batch": batch.pk, "status": "active", "page": 2})
    assert response.status_code == 302
    landing = client.get(response["Location"])
    assert _rows(landing.content.decode()) == newest_first[50:100]
    assert landing.context["filter_form"].cleaned_data["batch"] == batch
    # Past the end: the oldest page; not a number: the first page, filters kept.
    assert _rows(client.get(client.get(codes_url(course), {"page": 99})["Location"]).content.decode()) == newest_first[70:]
    response = client.get(codes_url(course), {"page": "zzz", "status": "active"})
    assert response["Location"] == f"{codes_url(course)}?status=active"


def test_a_broken_cursor_says_so_and_shows_the_first_page(client_for, course, course_staff):
    EnrollmentCodeFactory.create_batch(2, courses=[course])
    response = client_for(course_staff).get(codes_url(course), {"cursor": "not-a-cursor"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "That page link is not valid" in html and len(_rows(html)) == 2


# --- expiry dates: what the team chose is what every page and export shows ----------------

def _site_time(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=timezone.get_default_timezone())


def test_expiry_chosen_in_the_form_is_shown_as_that_day(settings, client_for, course, course_staff):
    settings.TIME_ZONE = "Europe/Amsterdam"
    client = client_for(course_staff)
    with time_machine.travel(_site_time(2026, 11, 25, 9, 0), tick=False):
        form_page = client.get(codes_url(course)).content.decode()
        # The generating user has no zone of their own: the site's is chosen.
        assert '<option value="Europe/Amsterdam" selected>Europe/Amsterdam</option>' in form_page
        client.post(codes_url(course), {"courses": [course.pk], "count": 1, "uses_mode": "single", "expires_on": "2026-12-31"})
        code = EnrollmentCode.objects.get()
        html = client.get(codes_url(course)).content.decode()
        csv_rows = read_csv(client.get(reverse("course_codes_export", kwargs={"course_key": course.key})))
    row = re.search(rf'<tr data-code="{code.code}">(.*?)</tr>', html, re.S).group(1)
    assert '<time datetime="2026-12-31">31 Dec 2026</time>' in row and "Europe/Amsterdam" in row
    assert "2027" not in row and "00:00" not in row
    assert csv_rows[1][0] == code.code and csv_rows[1][5] == "2026-12-31" and csv_rows[1][10] == "Europe/Amsterdam"


@pytest.mark.parametrize(("now", "status"), [((2026, 12, 31, 23, 59, 59), "Active"), ((2027, 1, 1, 0, 0, 0), "Expired")])
def test_table_and_export_at_the_end_of_the_expiry_day(settings, client_for, course, course_staff, now, status):
    settings.TIME_ZONE = "America/New_York"
    code = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31))
    with time_machine.travel(_site_time(*now), tick=False):
        client = client_for(course_staff)
        html = client.get(codes_url(course)).content.decode()
        csv_rows = read_csv(client.get(reverse("course_codes_export", kwargs={"course_key": course.key})))
        filtered = client.get(codes_url(course), {"status": status.lower()}).context["page"].rows
    row = re.search(rf'<tr data-code="{code.code}">(.*?)</tr>', html, re.S).group(1)
    assert "31 Dec 2026" in row and f">{status}</span>" in row
    assert csv_rows[1][5:7] == ["2026-12-31", status]
    assert [c.pk for c in filtered] == [code.pk]


def test_group_codes_page_shows_the_expiry_day(client_for, course):
    leader = UserFactory()
    group = GroupFactory(leaders=[leader], courses=[course])
    code = EnrollmentCodeFactory(groups=[group], expires_on=datetime.date(2099, 12, 31))
    html = client_for(leader).get(reverse("group_codes_page", kwargs={"group_id": group.pk})).content.decode()
    row = re.search(rf'<tr data-code="{code.code}">(.*?)</tr>', html, re.S).group(1)
    assert "31 Dec 2099" in row


def test_redeeming_an_expired_code_says_the_day_it_expired(settings, client_for, course, learner):
    settings.TIME_ZONE = "Europe/Amsterdam"
    code = EnrollmentCodeFactory(courses=[course], expires_on=datetime.date(2026, 12, 31))
    with time_machine.travel(_site_time(2027, 1, 1, 0, 0, 0), tick=False):
        response = client_for(learner).post(reverse("redeem_code"), {"code": code.code})
    assert response.status_code == 400
    assert "This code expired at the end of 31 Dec 2026 (Europe/Amsterdam)." in response.content.decode()


def test_redeeming_into_a_full_course_says_which_course_is_full(client_for, course, learner):
    from ..factories import EnrollmentFactory

    EnrollmentFactory.create_batch(4, course=course)
    course.max_enrollments = 4
    course.save()
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    response = client_for(learner).post(reverse("redeem_code"), {"code": code.code})
    assert response.status_code == 400
    assert "Enrollment 101 is full." in response.content.decode()
    assert not Redemption.objects.exists() and not Enrollment.objects.filter(user=learner).exists()


def test_the_generate_form_offers_exceeding_the_cap_and_the_table_shows_it(client_for, course, course_staff):
    client = client_for(course_staff)
    assert "Allow enrollment past the course&#x27;s cap" in client.get(codes_url(course)).content.decode()
    client.post(codes_url(course), {"courses": [course.pk], "count": 1, "uses_mode": "unlimited"})
    assert not CodeBatch.objects.get().may_exceed_cap
    response = client.post(codes_url(course), {"courses": [course.pk], "count": 1, "uses_mode": "unlimited", "may_exceed_cap": "on"}, follow=True)
    assert CodeBatch.objects.filter(may_exceed_cap=True).count() == 1
    assert response.content.decode().count("may exceed the cap") == 1


# --- export ---------------------------------------------------------------------------

def test_export_contains_exactly_the_filtered_rows(client_for, course, course_staff):
    wanted = code_batch_generate(actor=course_staff, courses=[course], count=60, prefix="WANT")
    code_batch_generate(actor=course_staff, courses=[course], count=5, prefix="OTHER")
    response = client_for(course_staff).get(reverse("course_codes_export", kwargs={"course_key": course.key}), {"batch": wanted.pk})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="Acme_ENR101_codes_\d{4}-\d\d-\d\d-\d{4}\.csv"', response["Content-Disposition"])
    rows = read_csv(response)
    assert rows[0] == ["code", "courses", "groups", "uses", "max_uses", "expires", "status", "batch", "created", "past_cap", "expiry_time_zone"]
    assert sorted(r[0] for r in rows[1:]) == sorted(wanted.codes.values_list("code", flat=True))
    assert {r[1] for r in rows[1:]} == {course.display_name}


def test_export_status_filter_and_all_rows(client_for, course, course_staff):
    batch = code_batch_generate(actor=course_staff, courses=[course], count=4)
    EnrollmentCode.objects.filter(pk=batch.codes.first().pk).update(deactivated_at=timezone.now())
    url = reverse("course_codes_export", kwargs={"course_key": course.key})
    client = client_for(course_staff)
    assert len(read_csv(client.get(url))) == 5
    rows = read_csv(client.get(url, {"status": "deactivated"}))
    assert len(rows) == 2 and rows[1][6] == "Deactivated"


def test_export_cells_are_inert(client_for, course_staff):
    evil = CourseFactory(display_name='=HYPERLINK("http://evil.example","click")')
    from courses.models import CourseRole

    CourseRole.objects.create(course=evil, user=course_staff, role="staff")
    group = GroupFactory(name="@SUM(A1)")
    EnrollmentCodeFactory(courses=[evil], groups=[group], prefix="=X")
    response = client_for(course_staff).get(reverse("course_codes_export", kwargs={"course_key": evil.key}))
    rows = read_csv(response)
    code, courses, groups = rows[1][:3]
    assert code.startswith("'=X-")
    assert courses == "'" + evil.display_name and groups == "'@SUM(A1)"
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))


# --- deactivate and redemptions ------------------------------------------------------------

def test_deactivate_then_redeeming_is_refused(client_for, course, course_staff, learner):
    code = EnrollmentCodeFactory(courses=[course])
    url = reverse("course_codes_deactivate", kwargs={"course_key": course.key, "code_id": code.pk})
    response = client_for(course_staff).post(url, {"batch": str(code.batch_id), "page": "1"})
    assert response.status_code == 302 and response["Location"] == f"{codes_url(course)}?batch={code.batch_id}&page=1"
    code.refresh_from_db()
    assert code.status == Status.DEACTIVATED
    page = client_for(course_staff).get(codes_url(course)).content.decode()
    row = re.search(rf'<tr data-code="{code.code}">(.*?)</tr>', page, re.S).group(1)
    assert "Deactivated" in row and ">Deactivate<" not in row

    response = client_for(learner).post(reverse("redeem_code"), {"code": code.code})
    assert response.status_code == 400 and "deactivated" in response.content.decode()
    assert not Enrollment.objects.filter(user=learner).exists()


def test_deactivate_asks_for_confirmation(client_for, course, course_staff):
    code = EnrollmentCodeFactory(courses=[course])
    html = client_for(course_staff).get(codes_url(course)).content.decode()
    assert f'data-confirm="Deactivate {code.code}? It stops working at once, and this cannot be undone."' in html


def test_deactivate_needs_post(client_for, course, course_staff):
    code = EnrollmentCodeFactory(courses=[course])
    response = client_for(course_staff).get(reverse("course_codes_deactivate", kwargs={"course_key": course.key, "code_id": code.pk}))
    assert response.status_code == 405
    code.refresh_from_db()
    assert code.deactivated_at is None


def test_redemptions_view(client_for, course, course_staff, learner):
    code = EnrollmentCodeFactory(courses=[course], max_uses=5)
    RedemptionFactory(code=code, user=learner)
    response = client_for(course_staff).get(reverse("course_codes_redemptions", kwargs={"course_key": course.key, "code_id": code.pk}))
    assert response.status_code == 200
    html = response.content.decode()
    assert "learner@example.com" in html and code.code in html


def test_redemptions_page_by_keyset_and_old_page_numbers_land_on_their_page(client_for, course, course_staff, monkeypatch):
    monkeypatch.setattr("codes.views.PAGE_SIZE", 2)
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    start = timezone.now()
    redemptions = [RedemptionFactory(code=code, created=start + datetime.timedelta(minutes=i)) for i in range(5)]
    EnrollmentCode.objects.filter(pk=code.pk).update(uses=5)
    newest_first = [r.user.email for r in reversed(redemptions)]
    url = reverse("course_codes_redemptions", kwargs={"course_key": course.key, "code_id": code.pk})
    client = client_for(course_staff)
    emails = lambda html: re.findall(r"<td>([^<]+@example\.com)</td>", html)  # noqa: E731
    first = client.get(url).content.decode()
    assert emails(first) == newest_first[:2] and "5 of unlimited uses" in first
    second = client.get(url + _link(first, "Older")).content.decode()
    assert emails(second) == newest_first[2:4]
    old_third = client.get(url, {"page": 3})
    assert old_third.status_code == 302 and emails(client.get(old_third["Location"]).content.decode()) == newest_first[4:]
    with CaptureQueriesContext(connection) as first_page:
        client.get(url)
    with CaptureQueriesContext(connection) as later_page:
        client.get(url + _link(second, "Older"))
    assert len(later_page.captured_queries) == len(first_page.captured_queries)
    assert not any("COUNT(" in q["sql"].upper() and "codes_redemption" in q["sql"] for q in first_page.captured_queries)
    assert client.get(url, {"cursor": "@@"}).status_code == 400


def test_a_code_of_another_course_is_not_found_through_mine(client_for, course, course_staff, other_course):
    theirs = EnrollmentCodeFactory(courses=[other_course])
    client = client_for(course_staff)
    kwargs = {"course_key": course.key, "code_id": theirs.pk}
    assert client.post(reverse("course_codes_deactivate", kwargs=kwargs)).status_code == 404
    assert client.get(reverse("course_codes_redemptions", kwargs=kwargs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.deactivated_at is None


# --- group leaders and platform admins ---------------------------------------------------

def test_group_leader_manages_their_group_codes(client_for, course):
    leader = UserFactory(username="leader")
    group = GroupFactory(leaders=[leader], courses=[course])
    client = client_for(leader)
    page_url = reverse("group_codes_page", kwargs={"group_id": group.pk})
    response = client.get(page_url)
    assert response.status_code == 200
    assert list(response.context["form"].fields["groups"].queryset) == [group]
    assert not response.context["form"].fields["courses"].queryset.exists()
    response = client.post(page_url, {"groups": [group.pk], "count": 3, "uses_mode": "single"})
    assert response.status_code == 302
    batch = CodeBatch.objects.get()
    assert list(batch.groups.all()) == [group] and batch.codes.count() == 3
    assert len(client.get(page_url).context["page"].rows) == 3
    rows = read_csv(client.get(reverse("group_codes_export", kwargs={"group_id": group.pk})))
    assert len(rows) == 4 and rows[1][2] == group.name
    code = batch.codes.first()
    assert client.post(reverse("group_codes_deactivate", kwargs={"group_id": group.pk, "code_id": code.pk})).status_code == 302
    assert client.get(reverse("group_codes_redemptions", kwargs={"group_id": group.pk, "code_id": code.pk})).status_code == 200
    assert client.get(reverse("group_list")).status_code == 200


def test_platform_admin_sees_every_code(client_for, platform_admin, course, other_course):
    a = EnrollmentCodeFactory(courses=[course])
    b = EnrollmentCodeFactory(groups=[GroupFactory()])
    client = client_for(platform_admin)
    response = client.get(reverse("all_codes_page"))
    assert response.status_code == 200
    assert {c.pk for c in response.context["page"].rows} == {a.pk, b.pk}
    assert len(read_csv(client.get(reverse("all_codes_export")))) == 3
    # and any course's tab
    assert client.get(codes_url(other_course)).status_code == 200


# --- permissions: 403 on every page and action --------------------------------------------

@pytest.fixture
def scene(course, other_course):
    """A code on ``course`` and one of a group led by someone, plus the outsiders."""
    leader = UserFactory(username="leader")
    group = GroupFactory(name="Led group", leaders=[leader])
    other_leader = UserFactory(username="otherleader")
    GroupFactory(name="Another group", leaders=[other_leader])
    return {
        "course_code": EnrollmentCodeFactory(courses=[course]),
        "group_code": EnrollmentCodeFactory(groups=[group]),
        "group": group,
        "other_leader": other_leader,
    }


def _endpoints(course, scene):
    ck, gid = course.key, scene["group"].pk
    cc, gc = scene["course_code"].pk, scene["group_code"].pk
    return [
        ("get", reverse("instructor_codes", kwargs={"course_key": ck})),
        ("post", reverse("instructor_codes", kwargs={"course_key": ck})),
        ("get", reverse("course_codes_export", kwargs={"course_key": ck})),
        ("post", reverse("course_codes_deactivate", kwargs={"course_key": ck, "code_id": cc})),
        ("get", reverse("course_codes_redemptions", kwargs={"course_key": ck, "code_id": cc})),
        ("get", reverse("course_codes_batches", kwargs={"course_key": ck})),
        ("get", reverse("group_codes_page", kwargs={"group_id": gid})),
        ("post", reverse("group_codes_page", kwargs={"group_id": gid})),
        ("get", reverse("group_codes_export", kwargs={"group_id": gid})),
        ("post", reverse("group_codes_deactivate", kwargs={"group_id": gid, "code_id": gc})),
        ("get", reverse("group_codes_redemptions", kwargs={"group_id": gid, "code_id": gc})),
        ("get", reverse("group_codes_batches", kwargs={"group_id": gid})),
        ("get", reverse("all_codes_page")),
        ("post", reverse("all_codes_page")),
        ("get", reverse("all_codes_export")),
        ("post", reverse("all_codes_deactivate", kwargs={"code_id": cc})),
        ("get", reverse("all_codes_redemptions", kwargs={"code_id": cc})),
        ("get", reverse("all_codes_batches")),
    ]


@pytest.mark.parametrize("persona", ["other_staff", "other_leader", "learner"])
def test_outsiders_get_403_everywhere(client_for, course, scene, persona, request):
    user = scene["other_leader"] if persona == "other_leader" else request.getfixturevalue(persona)
    client = client_for(user)
    for method, url in _endpoints(course, scene):
        data = {"courses": [course.pk], "groups": [scene["group"].pk], "count": 1, "uses_mode": "single"} if method == "post" else {}
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, (persona, method, url, response.status_code)
    assert CodeBatch.objects.count() == 2
    assert not EnrollmentCode.objects.filter(deactivated_at__isnull=False).exists()


def test_anonymous_is_sent_to_log_in(client, course, scene):
    for method, url in _endpoints(course, scene):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_course_staff_of_this_course_may_not_use_the_group_pages(client_for, course, course_staff, scene):
    url = reverse("group_codes_page", kwargs={"group_id": scene["group"].pk})
    assert client_for(course_staff).get(url).status_code == 403


# --- redemption page -------------------------------------------------------------------------

def test_anonymous_comes_back_to_the_form_with_the_code(client, course):
    url = reverse("redeem_code")
    response = client.get(url, {"code": "ABCD-EFGH-JKMN"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/redeem/%3Fcode%3DABCD-EFGH-JKMN"
    learner = UserFactory()
    client.force_login(learner)
    page = client.get(url, {"code": "ABCD-EFGH-JKMN"})
    assert page.context["form"].initial["code"] == "ABCD-EFGH-JKMN"
    # also after a sign-up, where ?next= is lost: the session kept it
    assert client.get(url).context["form"].initial["code"] == "ABCD-EFGH-JKMN"


def test_redeem_success_links_to_the_courses(client_for, course, learner):
    group = GroupFactory(name="Team blue")
    code = EnrollmentCodeFactory(courses=[course], groups=[group], code="ABCD-EFGH-JKMN")
    response = client_for(learner).post(reverse("redeem_code"), {"code": " abcd-efgh-jkmn "})
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("course_detail", kwargs={"course_key": course.key}) in html and course.display_name in html
    assert "Team blue" in html
    assert Enrollment.objects.filter(user=learner, course=course, is_active=True).exists()
    assert GroupMembership.objects.filter(user=learner, group=group).exists()
    code.refresh_from_db()
    assert code.uses == 1
    home = client_for(learner).get(reverse("home")).content.decode()
    assert course.display_name in home


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda c: None, "no such code"),
        (lambda c: EnrollmentCodeFactory(courses=[c], expires_on=timezone.localdate() - datetime.timedelta(days=1)), "expired at the end of"),
        (lambda c: EnrollmentCodeFactory(courses=[c], max_uses=1, uses=1), "already been used"),
        (lambda c: EnrollmentCodeFactory(courses=[c], deactivated_at=timezone.now()), "deactivated"),
    ],
)
def test_redeem_failure_messages(client_for, course, learner, make, words):
    code = make(course)
    response = client_for(learner).post(reverse("redeem_code"), {"code": code.code if code else "ZZZZ-ZZZZ-ZZZZ"})
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not Enrollment.objects.exists() and not Redemption.objects.exists()


# --- rate limit ---------------------------------------------------------------------------------

def _fail(client, n):
    for _ in range(n):
        assert client.post(reverse("redeem_code"), {"code": "WRONG-WRONG-WRONG"}).status_code == 400


def test_rate_limit_per_user_holds_and_resets(client_for, course, learner):
    code = EnrollmentCodeFactory(courses=[course])
    with time_machine.travel(datetime.datetime(2026, 11, 25, 9, 0, tzinfo=datetime.UTC), tick=False) as traveller:
        client = client_for(learner)
        _fail(client, 10)
        response = client.post(reverse("redeem_code"), {"code": code.code})
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 600 and "Too many unsuccessful code attempts" in response.content.decode()
        assert not Enrollment.objects.exists()
        traveller.shift(datetime.timedelta(minutes=10, seconds=6))
        assert client.post(reverse("redeem_code"), {"code": code.code}).status_code == 200
        assert Enrollment.objects.filter(user=learner).exists()


def test_rate_limit_per_address_is_shared(client_for, course, settings):
    settings.CODE_REDEEM_RATE_PER_IP = "20/10m"  # the default is far looser (a school behind NAT)
    for _ in range(2):
        _fail(client_for(UserFactory()), 10)
    code = EnrollmentCodeFactory(courses=[course])
    assert client_for(UserFactory()).post(reverse("redeem_code"), {"code": code.code}).status_code == 429
    # another address is not affected
    response = client_for(UserFactory()).post(reverse("redeem_code"), {"code": code.code}, REMOTE_ADDR="10.9.8.7")
    assert response.status_code == 200


def test_forged_forwarded_for_does_not_reset_the_limit(client_for, course, learner):
    client = client_for(learner)
    _fail(client, 10)
    response = client.post(reverse("redeem_code"), {"code": "WRONG"}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 429


def test_successes_do_not_count(client_for, course, learner):
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    client = client_for(learner)
    for _ in range(15):
        assert client.post(reverse("redeem_code"), {"code": code.code}).status_code == 200
    _fail(client, 9)
    assert client.post(reverse("redeem_code"), {"code": code.code}).status_code == 200


# --- pagination keeps the filters (the one pagination partial, {% querystring %}) -------

def test_codes_page_links_keep_the_batch_and_status_filters(client_for, course, course_staff, settings):
    batch = code_batch_generate(courses=[course], groups=[], count=51, prefix="", expires_on=None, max_uses=1, actor=course_staff)
    client = client_for(course_staff)
    html = client.get(codes_url(course), {"batch": batch.pk, "status": "active"}).content.decode()
    assert 'aria-label="Codes pages"' in html
    older = _link(html, "Older")
    assert older.startswith(f"?batch={batch.pk}&status=active&cursor=")
    second = client.get(codes_url(course) + older).content.decode()
    assert len(_rows(second)) == 1
    assert _link(second, "Newer").startswith(f"?batch={batch.pk}&status=active&cursor=")
    assert _link(second, "Newest") == f"?batch={batch.pk}&status=active"


@pytest.mark.parametrize("query", [
    {"batch": "abc"}, {"batch": "999999"}, {"status": "bogus"}, {"batch": "", "status": ""}, {"page": "zzz"},
    {"batch": "abc", "status": "active"},
])
def test_codes_filter_clears_values_it_does_not_know_and_never_fails(client_for, course, course_staff, query):
    EnrollmentCodeFactory.create_batch(2, courses=[course])
    response = client_for(course_staff).get(codes_url(course), query, follow=True)
    assert response.status_code == 200
    assert len(response.context["page"].rows) == 2
    export = client_for(course_staff).get(reverse("course_codes_export", kwargs={"course_key": course.key}), query)
    assert export.status_code == 200 and len(read_csv(export)) == 3


def test_codes_filter_by_another_scopes_batch_shows_the_scope_unfiltered(client_for, course, other_course, course_staff):
    mine = EnrollmentCodeFactory(courses=[course])
    foreign = EnrollmentCodeFactory(courses=[other_course])
    response = client_for(course_staff).get(codes_url(course), {"batch": foreign.batch_id})
    assert [c.pk for c in response.context["page"].rows] == [mine.pk]


def test_deactivate_goes_back_to_the_page_it_was_on(client_for, course, course_staff):
    code_batch_generate(actor=course_staff, courses=[course], count=60)
    client = client_for(course_staff)
    first = client.get(codes_url(course), {"status": "active"}).content.decode()
    older = _link(first, "Older")
    second = client.get(codes_url(course) + older).content.decode()
    code = _rows(second)[0]
    form = re.search(rf'<tr data-code="{code}">.*?<form method="post"[^>]*action="([^"]+)"(.*?)</form>', second, re.S)
    hidden = dict(re.findall(r'<input type="hidden" name="(batch|status|cursor)" value="([^"]*)"', form.group(2)))
    response = client.post(form.group(1), hidden)
    assert response.status_code == 302 and response["Location"] == codes_url(course) + older
    assert EnrollmentCode.objects.get(code=code).deactivated_at is not None
