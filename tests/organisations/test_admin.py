"""The group admin's "add members" field resolves its identifiers in a fixed
number of queries, through the one resolver (accounts.selectors)."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from organisations.admin import GroupAdminForm

pytestmark = pytest.mark.django_db
User = get_user_model()


def _queries_to_clean(names: list[str]) -> tuple[int, GroupAdminForm]:
    form = GroupAdminForm(data={"name": "Cohort A", "description": "", "add_members": "\n".join(names)})
    with CaptureQueriesContext(connection) as queries:
        assert form.is_valid(), form.errors
    return len(queries), form


def test_add_members_makes_the_same_queries_for_two_or_two_hundred_people():
    User.objects.bulk_create([User(username=f"p{i}", email=f"p{i}@example.com") for i in range(200)])
    two, form = _queries_to_clean(["P0", "p1@EXAMPLE.com"])
    assert [u.username for u in form.cleaned_data["add_members"]] == ["p0", "p1"]
    many, form = _queries_to_clean([f"p{i}" for i in range(100)] + [f"P{i}@Example.com" for i in range(100, 200)])
    assert len(form.cleaned_data["add_members"]) == 200
    assert many == two == 2


def test_add_members_names_who_has_no_account():
    User.objects.create(username="amy", email="amy@example.com")
    form = GroupAdminForm(data={"name": "Cohort A", "description": "", "add_members": "amy, ghost"})
    assert not form.is_valid()
    assert "No active account for: ghost" in str(form.errors["add_members"])
