"""The codes table's Batch filter: the newest batches in its list (the page costs
the same whatever the number of batches), a search for the others (htmx as one
types, or the Filter button), and the ``batch`` parameter as it always was."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from codes.models import CodeBatch
from codes.selectors import BATCH_CHOICES
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
