"""One email key everywhere (issue 13 item 6): an address with its domain in
Unicode (``idn@пример.рф``) or in punycode (``idn@xn--e1afmkfd.xn--p1ai``), in
any case, is one mailbox: one account, one invitation, found by either."""

import importlib
import logging
import re

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.adapter import AccountAdapter
from accounts.selectors import user_by_email, users_by_identifier
from enrollment_site.lib import emails
from enrollment_site.lib.emails import email_key
from enrollment_site.lib.identifiers import parse_identifiers
from enrollments.models import Allowance, Enrollment, Notification, Outcome
from enrollments.services import enrollment_batch_update

from ..factories import AllowanceFactory, CourseFactory, UserFactory

User = get_user_model()
pytestmark = pytest.mark.django_db

UNICODE = "idn@пример.рф"
PUNYCODE = "idn@xn--e1afmkfd.xn--p1ai"
PASSWORD = "correct-Horse-battery-9"
CONFIRM_RE = re.compile(r"https?://testserver(/accounts/confirm-email/\S+)")

fill_email_keys = importlib.import_module("accounts.migrations.0006_fill_email_keys").fill_email_keys
rekey_allowances = importlib.import_module("enrollments.migrations.0013_allowance_email_keys").rekey_allowances


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "http://testserver"


def _sign_up(client, email, username="newcomer"):
    return client.post(reverse("account_signup"), {"email": email, "username": username, "password1": PASSWORD, "password2": PASSWORD})


def _confirm(client, message):
    [path] = CONFIRM_RE.findall(message.body)
    return client.post(path)


def _batch(course, identifiers, **options):
    options = {"action": "enroll", "auto_enroll": True, "email_students": False, "actor": None, **options}
    return enrollment_batch_update(course=course, identifiers=identifiers, **options)


# --- the key -----------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [UNICODE, PUNYCODE, "IDN@ПРИМЕР.РФ", " Idn@Пример.Рф ", "IDN@XN--E1AFMKFD.XN--P1AI"])
def test_every_spelling_of_one_mailbox_has_one_key(spelling):
    assert email_key(spelling) == PUNYCODE


def test_the_key_maps_the_domain_as_a_browser_does():
    assert email_key("Ana@Bücher.example") == "ana@xn--bcher-kva.example"
    assert email_key("a@ｅｘａｍｐｌｅ.com") == "a@example.com"  # fullwidth letters, UTS 46
    assert email_key("a@☃.net") == "a@xn--n3h.net"  # refused by IDNA 2008: IDNA 2003 as before


def test_without_the_idna_package_python_codec_gives_the_same_keys(monkeypatch):
    monkeypatch.setattr(emails, "idna", None)
    emails._idna_domain_key.cache_clear()
    try:
        assert email_key(UNICODE) == PUNYCODE
        assert email_key("Ana@Bücher.example") == "ana@xn--bcher-kva.example"
        assert email_key("a@faß.de") == "a@fass.de"  # IDNA 2003 maps ß to ss: the codec was used
    finally:
        emails._idna_domain_key.cache_clear()


def test_the_parser_gives_every_spelling_one_identifier():
    [ident] = parse_identifiers(f"{UNICODE}, {PUNYCODE}, IDN@ПРИМЕР.РФ")
    assert ident.key == PUNYCODE and ident.text == UNICODE


# --- the account ---------------------------------------------------------------------------


def test_the_account_stores_its_key_and_keeps_it_on_every_save():
    user = UserFactory(username="idn", email=UNICODE)
    assert user.email_key == PUNYCODE
    user.email = "other@Example.com"
    user.save(update_fields=["email"])
    user.refresh_from_db()
    assert user.email_key == "other@example.com"


def test_accounts_written_in_bulk_get_their_keys_too():
    User.objects.bulk_create([User(username="bulk1", email=UNICODE), User(username="bulk2", email="B@Example.com")])
    assert dict(User.objects.filter(username__startswith="bulk").values_list("username", "email_key")) == {
        "bulk1": PUNYCODE, "bulk2": "b@example.com",
    }


@pytest.mark.parametrize("second", [PUNYCODE, "IDN@ПРИМЕР.РФ"])
def test_the_database_refuses_a_second_account_for_the_same_mailbox(second):
    UserFactory(username="first", email=UNICODE)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="second", email=second, password=PASSWORD)


@pytest.mark.parametrize("spelling", [UNICODE, PUNYCODE, "IDN@XN--E1AFMKFD.xn--p1ai"])
def test_lookups_find_the_account_by_any_spelling(spelling):
    user = UserFactory(username="idn", email=UNICODE)
    assert users_by_identifier(parse_identifiers(spelling)) == [(parse_identifiers(spelling)[0], user)]
    assert user_by_email(spelling) == user


# --- sign-up ---------------------------------------------------------------------------------


@pytest.mark.parametrize("existing, typed", [(UNICODE, PUNYCODE), (PUNYCODE, UNICODE)])
def test_signing_up_with_the_other_spelling_of_a_taken_address_creates_no_account(client, existing, typed):
    owner = UserFactory(username="owner", email=existing)

    response = _sign_up(client, typed, username="second")

    # As for a taken address in another case: enumeration prevention makes the
    # page read like any sign-up; no account is made, and the mailbox is told.
    assert response.status_code == 302 and response.url == reverse("account_email_verification_sent")
    assert list(User.objects.filter(email_key=PUNYCODE)) == [owner]
    assert not User.objects.filter(username="second").exists()
    [message] = mail.outbox
    assert "already exists" in message.subject.lower()
    assert "/accounts/confirm-email/" not in message.body


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgresql  # real threads, each with its own connection
def test_two_sign_ups_for_one_mailbox_at_once_make_one_account(monkeypatch):
    import threading
    import time

    from django.test import Client

    import accounts.forms
    from tests.races import fire_together

    real, checked, waited = accounts.forms.user_by_email, threading.Barrier(2), threading.local()

    def checked_together(address, **kwargs):
        # Both sign-ups find the mailbox free before either writes.
        found = real(address, **kwargs)
        if not getattr(waited, "once", False):
            waited.once = True
            checked.wait(timeout=30)
            time.sleep(0.1)
        return found

    monkeypatch.setattr(accounts.forms, "user_by_email", checked_together)
    spellings = [UNICODE, PUNYCODE]
    answers = fire_together([Client(), Client()], lambda i, client: _sign_up(client, spellings[i], username=f"racer{i}"))

    assert None not in answers, "a sign-up raised (a 500 for the person)"
    assert [a.status_code for a in answers] == [302, 302]
    assert all(a.url == reverse("account_email_verification_sent") for a in answers)
    assert User.objects.filter(email_key=PUNYCODE).count() == 1
    subjects = sorted(m.subject.lower() for m in mail.outbox)
    assert len(subjects) == 2 and sum("already exists" in s for s in subjects) == 1


def test_password_reset_by_the_other_spelling_reaches_the_account(client):
    UserFactory(username="owner", email=UNICODE)
    client.post(reverse("account_reset_password"), {"email": PUNYCODE})
    [message] = mail.outbox
    assert "/accounts/password/reset/key/" in message.body


@pytest.mark.parametrize("typed", [PUNYCODE, "IDN@ПРИМЕР.РФ", UNICODE])
def test_logging_in_by_any_spelling_of_the_address(client, typed):
    user = UserFactory(username="owner", email=UNICODE, password=PASSWORD)
    client.post(reverse("account_login"), {"login": typed, "password": PASSWORD})
    assert client.session.get("_auth_user_id") == str(user.pk)


def test_allauth_sees_the_spelling_the_account_has():
    UserFactory(username="owner", email=UNICODE)
    assert AccountAdapter().clean_email(PUNYCODE) == UNICODE
    assert AccountAdapter().clean_email("nobody@example.com") == "nobody@example.com"


# --- invitations and batches -----------------------------------------------------------------


@pytest.mark.parametrize("invited, registered", [(UNICODE, UNICODE), (PUNYCODE, UNICODE), (UNICODE, PUNYCODE)])
def test_an_invitation_enrolls_the_person_who_registers_with_that_mailbox(client, invited, registered):
    course = CourseFactory()
    result = _batch(course, [invited])
    assert [r.outcome for r in result.results] == [Outcome.ALLOWED_AUTO]
    assert Allowance.objects.get(course=course).email_key == PUNYCODE

    _sign_up(client, registered)
    user = User.objects.get(username="newcomer")
    assert not Enrollment.objects.filter(user=user).exists()
    assert _confirm(client, mail.outbox[-1]).status_code == 302

    assert Enrollment.objects.filter(user=user, course=course, is_active=True).exists()
    assert Allowance.objects.get(course=course).used_at is not None


def test_an_allowance_saved_one_by_one_has_the_same_key():
    allowance = AllowanceFactory(email="IDN@Пример.рф")
    assert allowance.email_key == PUNYCODE


@pytest.mark.parametrize("typed", [UNICODE, PUNYCODE, "IDN@ПРИМЕР.РФ"])
def test_batch_enrolling_an_existing_idn_account_by_email_enrolls_them_without_an_allowance(typed):
    course = CourseFactory()
    user = UserFactory(username="idn", email=UNICODE)

    result = _batch(course, [typed])

    assert [r.outcome for r in result.results] == [Outcome.ENROLLED]
    assert Enrollment.objects.filter(user=user, course=course, is_active=True).exists()
    assert not Allowance.objects.exists()


def test_notifications_are_keyed_by_the_mailbox(django_capture_on_commit_callbacks):
    course = CourseFactory()
    with django_capture_on_commit_callbacks():
        _batch(course, [UNICODE], email_students=True)
    assert list(Notification.objects.values_list("recipient_key", flat=True)) == [PUNYCODE]


def test_unenrolling_by_the_other_spelling_removes_the_invitation():
    course = CourseFactory()
    _batch(course, [UNICODE])
    result = _batch(course, [PUNYCODE], action="unenroll")
    assert [r.outcome for r in result.results] == [Outcome.ALLOWANCE_REMOVED]
    assert not Allowance.objects.exists()


@pytest.mark.parametrize("typed", [PUNYCODE, "IDN@ПРИМЕР.РФ"])
def test_an_organisation_import_finds_the_idn_account_by_either_spelling(typed):
    from organisations.services import import_check, import_run

    course = CourseFactory()
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    user = UserFactory(username="idn", email=UNICODE)
    checked = import_check(name="p.csv", data=f"email,first name,{course.key}\n{typed},Ida,x\n".encode(), actor=admin)
    assert checked.preview["people_updated"] == 1 and checked.preview["allowances"] == 0
    import_run(org_import=checked, actor=admin)
    assert Enrollment.objects.filter(user=user, course=course, is_active=True).exists()
    assert User.objects.get(pk=user.pk).first_name == "Ida"
    assert not Allowance.objects.exists()


# --- migrating existing data ---------------------------------------------------------------------


def test_the_account_migration_keys_everyone_and_flags_a_second_account_for_the_same_mailbox(caplog):
    first = UserFactory(username="first", email=UNICODE)
    second = UserFactory(username="second", email="placeholder@example.com")
    plain = UserFactory(username="plain", email="Plain@Example.com")
    # As before keys: the second account holds the punycode spelling, and no key is filled in.
    User.objects.filter(pk=second.pk).update(email=PUNYCODE.upper())
    for user in (first, second, plain):
        User.objects.filter(pk=user.pk).update(email_key=f"not filled {user.pk}", username_skeleton="")

    with caplog.at_level(logging.WARNING, logger="accounts.migrations"):
        flagged = fill_email_keys(apps)

    assert flagged == [second.pk]
    rows = {u.username: (u.email_key, u.email_key_clash) for u in User.objects.all()}
    assert rows == {"first": (PUNYCODE, False), "second": (PUNYCODE, True), "plain": ("plain@example.com", False)}
    assert User.objects.get(pk=plain.pk).username_skeleton == "plain"
    assert f"Accounts {first.pk} and {second.pk}" in caplog.text
    # Nothing deleted; lookups name the older account; the flag clears once the
    # second account gets an address of its own.
    assert user_by_email(PUNYCODE) == first
    second.refresh_from_db()
    second.email = "second@example.com"
    second.save()
    second.refresh_from_db()
    assert (second.email_key, second.email_key_clash) == ("second@example.com", False)
    assert fill_email_keys(apps) == []  # again: nothing left to flag


def test_the_allowance_migration_rekeys_and_merges_into_the_earliest(caplog):
    course, other = CourseFactory(), CourseFactory()
    earliest = AllowanceFactory(course=course, email=UNICODE, auto_enroll=False)
    elsewhere = AllowanceFactory(course=other, email=UNICODE, auto_enroll=False)
    # As before keys: one by one, the address was only lower-cased, and the
    # batch's punycode key made a second allowance for the same mailbox.
    Allowance.objects.filter(pk__in=[earliest.pk, elsewhere.pk]).update(email_key=UNICODE)
    later = AllowanceFactory(course=course, email=PUNYCODE, auto_enroll=True)
    plain = AllowanceFactory(course=course, email="Plain@Example.com")

    with caplog.at_level(logging.WARNING, logger="enrollments.migrations"):
        deleted = rekey_allowances(apps)

    assert deleted == [later.pk]
    kept = Allowance.objects.get(pk=earliest.pk)
    assert (kept.email, kept.email_key, kept.auto_enroll, kept.used_at) == (UNICODE, PUNYCODE, True, None)
    assert Allowance.objects.get(pk=elsewhere.pk).email_key == PUNYCODE
    assert Allowance.objects.get(pk=plain.pk).email_key == "plain@example.com"
    assert Allowance.objects.count() == 3
    assert f"Allowance {later.pk}" in caplog.text and f"merged into allowance {earliest.pk}" in caplog.text
    assert rekey_allowances(apps) == []


def test_the_allowance_migration_changes_nothing_when_every_key_is_right():
    AllowanceFactory(email="a@example.com")
    AllowanceFactory(email=UNICODE)
    assert rekey_allowances(apps) == []
    assert set(Allowance.objects.values_list("email_key", flat=True)) == {"a@example.com", PUNYCODE}


def test_a_verified_address_of_the_account_is_kept_as_typed():
    user = UserFactory(username="idn", email=UNICODE)
    assert EmailAddress.objects.get(user=user).email == UNICODE
