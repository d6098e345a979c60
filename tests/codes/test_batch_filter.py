"""The codes table's Batch filter: the newest batches in its list (the page costs
the same whatever the number of batches), a search for the others (htmx as one
types, or the Filter button), and the ``batch`` parameter as it always was."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from codes.models import CodeBatch, CodeBatchCourse, CodeBatchGroup
from codes.selectors import BATCH_CHOICES, Scope, batch_choices
from codes.services import code_batch_generate

from .factories import GroupFactory

pytestmark = pytest.mark.django_db


def codes_url(course):
    return reverse("instructor_codes", kwargs={"course_key": course.key})


def batches_url(course):
    return reverse("course_codes_batches", kwargs={"course_key": course.key})


def batches(course, actor, n, prefix=""):
    return [code_batch_generate(actor=actor, courses=[course], count=1, prefix=prefix) for _ in range(n)]


def options(html: str) -> list[str]:
    """The Batch select's option values, in order ("" for All batches)."""
    select = re.search(r'<select[^>]*name="batch".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="(\d*)"', select)


def note(html: str) -> str:
    return re.search(r'<p class="form-text mb-0" id="batch-choices-note"[^>]*>(.*?)</p>', html, re.S).group(1)


def test_the_list_holds_the_newest_batches_and_the_page_costs_the_same_with_more(client_for, course, course_staff):
    client = client_for(course_staff)
    made = batches(course, course_staff, 3)
    client.get(codes_url(course))  # the session's first request
    html = client.get(codes_url(course)).content.decode()
    assert options(html) == ["", *[str(b.pk) for b in reversed(made)]] and note(html) == ""
    with CaptureQueriesContext(connection) as few:
        client.get(codes_url(course))

    made += batches(course, course_staff, BATCH_CHOICES)
    html = client.get(codes_url(course)).content.decode()
    newest = [str(b.pk) for b in reversed(made)][:BATCH_CHOICES]
    assert options(html) == ["", *newest]
    assert note(html) == f"The newest {BATCH_CHOICES} batches; search to find older ones."
    with CaptureQueriesContext(connection) as many:
        client.get(codes_url(course))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_an_older_batch_filtered_on_stays_listed_and_selected(client_for, course, course_staff):
    oldest, *_ = batches(course, course_staff, BATCH_CHOICES + 2)
    response = client_for(course_staff).get(codes_url(course), {"batch": oldest.pk})
    html = response.content.decode()
    assert response.context["filter_form"].cleaned_data["batch"] == oldest
    assert options(html)[-1] == str(oldest.pk) and len(options(html)) == BATCH_CHOICES + 2
    assert f'<option value="{oldest.pk}" selected>' in html
    assert re.findall(r'<tr data-code="([^"]+)"', html) == list(oldest.codes.values_list("code", flat=True))


@pytest.mark.parametrize("how", ["number", "prefix", "date"])
def test_the_search_finds_a_batch_by_number_prefix_or_date(client_for, course, course_staff, how):
    wanted = code_batch_generate(actor=course_staff, courses=[course], count=1, prefix="SPRING")
    others = batches(course, course_staff, 2, prefix="AUTUMN")
    CodeBatch.objects.filter(pk__in=[b.pk for b in others]).update(created=timezone.now() - timezone.timedelta(days=40))
    search = {"number": str(wanted.pk), "prefix": "spr", "date": timezone.localdate().isoformat()}[how]
    response = client_for(course_staff).get(batches_url(course), {"batch_q": search}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html  # the select alone, for htmx to swap in
    assert options(html) == ["", str(wanted.pk)]
    assert note(html) == f"1 batch matching “{search}”."


def test_a_search_without_javascript_narrows_the_list_on_the_page(client_for, course, course_staff):
    wanted = batches(course, course_staff, 2, prefix="WANT")
    batches(course, course_staff, 3, prefix="OTHER")
    html = client_for(course_staff).get(codes_url(course), {"batch_q": "want", "batch": "", "status": ""}).content.decode()
    assert options(html) == ["", *[str(b.pk) for b in reversed(wanted)]]
    assert note(html) == "2 batches matching “want”."
    assert 'value="want"' in html  # the search field keeps what was typed
    assert "5 codes" in html  # the search picks from the list; the table is filtered by the batch chosen


def test_nothing_matches_says_so_and_a_search_is_not_a_filter(client_for, course, course_staff):
    batches(course, course_staff, 2)
    html = client_for(course_staff).get(batches_url(course), {"batch_q": "<b>nope</b>"}).content.decode()
    assert options(html) == [""] and note(html) == "No batch matches “&lt;b&gt;nope&lt;/b&gt;”."


def test_the_search_sees_only_batches_of_the_scope(client_for, course, other_course, course_staff, platform_admin):
    theirs = code_batch_generate(actor=platform_admin, courses=[other_course], count=1)
    mine = code_batch_generate(actor=course_staff, courses=[course], count=1)
    client = client_for(course_staff)
    assert options(client.get(batches_url(course), {"batch_q": str(theirs.pk)}).content.decode()) == [""]
    # Another course's batch given as the filter is not kept in the list either.
    assert options(client.get(batches_url(course), {"batch": theirs.pk}).content.decode()) == ["", str(mine.pk)]
    group = GroupFactory(leaders=[course_staff])
    in_group = code_batch_generate(actor=course_staff, courses=[], groups=[group], count=1)
    group_url = reverse("group_codes_batches", kwargs={"group_id": group.pk})
    assert options(client.get(group_url).content.decode()) == ["", str(in_group.pk)]
    everything = client_for(platform_admin).get(reverse("all_codes_batches")).content.decode()
    assert options(everything) == ["", str(in_group.pk), str(mine.pk), str(theirs.pk)]


def test_the_batch_list_is_read_only(client_for, course, course_staff):
    assert client_for(course_staff).post(batches_url(course), {"batch_q": "1"}).status_code == 405


def _batches_in_bulk(n: int, *, course=None, group=None) -> list[CodeBatch]:
    """``n`` batches of ``course`` or ``group``, a minute apart, oldest first: rows only, no codes."""
    start = timezone.now() - timezone.timedelta(days=1)
    made = CodeBatch.objects.bulk_create([CodeBatch(count=1, created=start + timezone.timedelta(minutes=i)) for i in range(n)])
    if course is not None:
        CodeBatchCourse.objects.bulk_create([CodeBatchCourse(codebatch=b, course=course, created=b.created) for b in made])
    if group is not None:
        CodeBatchGroup.objects.bulk_create([CodeBatchGroup(codebatch=b, group=group, created=b.created) for b in made])
    return made


def _newest_pks(made: list[CodeBatch]) -> list[int]:
    return [b.pk for b in sorted(made, key=lambda b: (b.created, b.pk), reverse=True)[:BATCH_CHOICES]]


@pytest.mark.parametrize("target", ["course", "group"])
def test_the_newest_batches_are_one_query_of_limit_rows_however_many_batches(course, other_course, target):
    group = GroupFactory()
    scope = Scope("course", course=course) if target == "course" else Scope("group", group=group)
    made = _batches_in_bulk(BATCH_CHOICES * 3, **{target: course if target == "course" else group})
    _batches_in_bulk(BATCH_CHOICES, course=other_course)  # newer, and not this scope's
    with CaptureQueriesContext(connection) as queries:
        choices = batch_choices(scope=scope)
    assert [b.pk for b in choices.batches] == _newest_pks(made) and choices.more
    assert len(queries.captured_queries) == 1
    assert re.search(rf"\bLIMIT {BATCH_CHOICES + 1}\b", queries.captured_queries[0]["sql"])


def _plan_rows(node: dict) -> list[tuple[str, int]]:
    """(node type, rows it produced over all its loops) for a plan node and everything under it."""
    rows = [(node["Node Type"], node["Actual Rows"] * node["Actual Loops"])]
    for child in node.get("Plans", []):
        rows += _plan_rows(child)
    return rows


@pytest.mark.postgresql
@pytest.mark.parametrize("target", ["course", "group"])
def test_the_newest_batches_are_read_from_the_index_and_no_further(course, other_course, target):
    # Reading a course's (or group's) batches newest first from the (target,
    # created, batch) index stops after LIMIT rows. Ordered by the batch table's
    # own created, either every batch of the target is read and sorted first, or
    # the site's batches are walked newest first past those of other targets.
    group = GroupFactory()
    scope = Scope("course", course=course) if target == "course" else Scope("group", group=group)
    many = 400
    _batches_in_bulk(many, **{target: course if target == "course" else group})
    _batches_in_bulk(many, course=other_course)  # newer
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE codes_codebatch, codes_codebatch_courses, codes_codebatch_groups")
    with CaptureQueriesContext(connection) as queries:
        batch_choices(scope=scope)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + queries.captured_queries[0]["sql"])
        plan = cursor.fetchone()[0][0]["Plan"]
    read = _plan_rows(plan)
    assert max(rows for _, rows in read) <= BATCH_CHOICES + 1, read
    assert not any(kind == "Sort" for kind, _ in read), read
