"""The admin changelists of the big tables (enrollment_site/lib/admin.py): no
whole-table COUNT(*) per page on PostgreSQL, the same queries at any size, and
exact counts on SQLite."""

import re

import pytest
from django.contrib import admin as django_admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from codes.models import EnrollmentCode, Redemption
from enrollment_site.lib import admin as lib_admin
from enrollments.models import Allowance, Enrollment, EnrollmentAudit, Notification, Source, State

from ..codes.factories import EnrollmentCodeFactory, RedemptionFactory
from ..factories import AllowanceFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _audit(course, n):
    EnrollmentAudit.objects.bulk_create(
        EnrollmentAudit(course=course, identifier=f"a{i}@example.com", state_before=State.NONE, state_after=State.NONE, source=Source.ADMIN)
        for i in range(n)
    )


def _notifications(course, n):
    Notification.objects.bulk_create(
        Notification(kind=Notification.Kind.ENROLLED, recipient=f"n{i}@example.com", recipient_key=f"n{i}@example.com", subject="s", course=course)
        for i in range(n)
    )


# The model, and how to add n rows of it to a course.
BIG_TABLES = {
    "codes_enrollmentcode": (EnrollmentCode, lambda course, n: EnrollmentCodeFactory.create_batch(n, courses=[course])),
    "codes_redemption": (Redemption, lambda course, n: RedemptionFactory.create_batch(n)),
    "enrollments_enrollment": (Enrollment, lambda course, n: EnrollmentFactory.create_batch(n, course=course)),
    "enrollments_allowance": (Allowance, lambda course, n: AllowanceFactory.create_batch(n, course=course)),
    "enrollments_enrollmentaudit": (EnrollmentAudit, _audit),
    "enrollments_notification": (Notification, _notifications),
    "accounts_user": (User, lambda course, n: UserFactory.create_batch(n)),
}


def _whole_table_counts(queries, table: str) -> list[str]:
    """The COUNT queries over ``table`` that read all its rows: no WHERE, no LIMIT."""
    return [
        q["sql"] for q in queries
        if re.search(rf'COUNT\(\*\).*FROM "{table}"', q["sql"]) and "WHERE" not in q["sql"] and "LIMIT" not in q["sql"]
    ]


def _unbounded_reads(queries, table: str) -> list[str]:
    """The queries that read ``table`` with no LIMIT: at a million rows, each would
    read them all (a list filter's choices gathered from the rows, say)."""
    return [q["sql"] for q in queries if f'"{table}"' in q["sql"] and "LIMIT" not in q["sql"]]


def _changelist(client, name, **params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(f"admin:{name}_changelist"), params)
    assert response.status_code == 200
    return response, captured.captured_queries


@pytest.mark.parametrize("name", BIG_TABLES)
def test_a_big_tables_changelist_costs_the_same_queries_at_two_sizes_and_never_counts_the_whole_table(client_for, platform_admin, course, name, monkeypatch):
    model, add = BIG_TABLES[name]
    # Pages of one row: the list is paged as a big table's is (a list of one page is read whole).
    monkeypatch.setattr(django_admin.site.get_model_admin(model), "list_per_page", 1)
    client = client_for(platform_admin)
    add(course, 2)
    small, small_queries = _changelist(client, name)
    add(course, 5)
    bigger, bigger_queries = _changelist(client, name)
    assert len(bigger_queries) == len(small_queries)
    # Exact while the table is small, on both databases (on PostgreSQL a count capped far above).
    assert bigger.context["cl"].result_count == model.objects.count()
    assert bigger.context["cl"].full_result_count is None
    if connection.vendor == "postgresql":
        table = model._meta.db_table
        assert _whole_table_counts(small_queries + bigger_queries, table) == []
        assert _unbounded_reads(bigger_queries, table) == []


@pytest.mark.postgresql
def test_past_the_cap_an_unfiltered_list_shows_postgresqls_estimate_and_a_filtered_one_a_capped_count(client_for, platform_admin, course, monkeypatch):
    monkeypatch.setattr(lib_admin, "COUNT_CAP", 3)
    EnrollmentFactory.create_batch(5, course=course)
    EnrollmentFactory(course=course, is_active=False)
    with connection.cursor() as cursor:
        cursor.execute('ANALYZE "enrollments_enrollment"')
    client = client_for(platform_admin)
    response, queries = _changelist(client, "enrollments_enrollment")
    # The estimate ANALYZE just wrote, without any COUNT over the table.
    assert response.context["cl"].result_count == 6
    assert not [q for q in queries if 'COUNT(*)' in q["sql"] and '"enrollments_enrollment"' in q["sql"]]
    response, queries = _changelist(client, "enrollments_enrollment", is_active__exact="1")
    assert response.context["cl"].result_count == 4  # COUNT_CAP + 1: "more than 3"
    assert len(response.context["cl"].result_list) == 5


def test_read_only_admins_offer_no_add_change_or_delete(client_for, platform_admin, course):
    _audit(course, 1)
    client = client_for(platform_admin)
    entry = EnrollmentAudit.objects.get()
    assert client.get(reverse("admin:enrollments_enrollmentaudit_add")).status_code == 403
    assert client.get(reverse("admin:enrollments_enrollmentaudit_delete", args=[entry.pk])).status_code == 403
    # The change page is a read-only view.
    page = client.get(reverse("admin:enrollments_enrollmentaudit_change", args=[entry.pk])).content.decode()
    assert 'name="_save"' not in page
    assert client.get(reverse("admin:courses_coursesettingschange_add")).status_code == 403
