"""The one resolver of identifiers to accounts (``users_by_identifier``) and its
inverse (``identifier_for``): case rules, IDN domains, duplicates, inactive
accounts, and a number of queries that does not grow with the identifiers."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.selectors import identifier_for, user_by_identifier, users_by_identifier
from enrollment_site.lib.identifiers import parse_identifiers

from ..factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def _resolve(raw):
    return [(ident.text, user) for ident, user in users_by_identifier(parse_identifiers(raw))]


def test_user_by_identifier():
    # Formerly courses.services.user_by_username_or_email, which matched usernames
    # exactly; usernames now follow the one rule (any case, exact spelling first).
    user = UserFactory(username="Mixed", email="Mixed.Case@Example.com")
    assert user_by_identifier("Mixed") == user
    assert user_by_identifier("  mixed.case@example.COM ") == user
    assert user_by_identifier("MIXED.CASE@EXAMPLE.COM") == user
    assert user_by_identifier("mixed") == user
    assert user_by_identifier("nobody@example.com") is None
    assert user_by_identifier("") is None
    assert user_by_identifier("two words") is None


def test_usernames_and_emails_match_in_any_case():
    amy = UserFactory(username="Amy", email="Amy@Example.com")
    assert _resolve("amy AMY@EXAMPLE.COM amy@example.com") == [("amy", amy), ("AMY@EXAMPLE.COM", amy)]


def test_of_two_usernames_differing_in_case_the_exact_spelling_wins():
    lower = UserFactory(username="sam")
    upper = UserFactory(username="Sam", email="sam2@example.com")
    assert _resolve(["Sam"]) == [("Sam", upper)]
    assert _resolve(["sam"]) == [("sam", lower)]
    assert _resolve(["SAM"]) == [("SAM", lower)]  # neither spelled so: the oldest


def test_an_idn_domain_matches_its_punycode_form():
    ana = UserFactory(username="ana", email="ana@xn--bcher-kva.example")
    assert _resolve(["Ana@Bücher.example"]) == [("Ana@Bücher.example", ana)]


def test_duplicates_count_once_and_unknown_or_invalid_name_nobody():
    amy = UserFactory(username="amy")
    assert _resolve("amy, Amy, ghost, not@an@email") == [("amy", amy), ("ghost", None), ("not@an@email", None)]


def test_inactive_accounts_are_found_only_when_asked():
    sleeper = UserFactory(username="sleeper", is_active=False)
    assert _resolve(["sleeper"]) == [("sleeper", None)]
    assert user_by_identifier("sleeper", active_only=False) == sleeper


@pytest.mark.parametrize("count", [10, 1000])
def test_two_queries_whatever_the_number_of_identifiers(count):
    User.objects.bulk_create(
        [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(count)]
    )
    raw = [f"U{i}" for i in range(0, count, 2)] + [f"u{i}@EXAMPLE.com" for i in range(1, count, 2)]
    with CaptureQueriesContext(connection) as queries:
        resolved = users_by_identifier(parse_identifiers(raw))
    assert len(queries) == 2
    assert all(user is not None for _, user in resolved) and len(resolved) == count
    # The names and addresses callers read come with the row: no query per person.
    with CaptureQueriesContext(connection) as queries:
        [(u.username, u.email, u.display_name, u.is_active) for _, u in resolved]
    assert len(queries) == 0


def test_identifier_for_a_user_names_them_again():
    plain = UserFactory(username="amy", email="amy@example.com")
    emaily = UserFactory(username="bob@old.example", email="bob@new.example")
    assert identifier_for(plain) == "amy"
    assert identifier_for(emaily) == "bob@new.example"
    assert _resolve([identifier_for(plain), identifier_for(emaily)]) == [("amy", plain), ("bob@new.example", emaily)]
