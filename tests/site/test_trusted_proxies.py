"""Limits per address behind proxies of our own (TRUSTED_PROXIES / TRUSTED_PROXY_COUNT):
each client behind the proxy is counted apart, a forged X-Forwarded-For is never
believed, and the limits per address are loose enough for a school behind NAT
while the tight ones stay per account."""

import pytest
from allauth.account.adapter import get_adapter
from django.test import RequestFactory
from django.urls import reverse

from enrollment_site.lib.attempt_limits import client_address
from enrollments.models import Enrollment

from ..codes.factories import EnrollmentCodeFactory
from ..factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-Horse-battery-9"
PROXY = "10.0.0.2"  # the TLS proxy in front of the site: every request's socket peer
CLIENT_A, CLIENT_B = "198.51.100.7", "198.51.100.8"  # two people behind it


def _request(xff: str | None, peer: str = PROXY):
    extra = {"REMOTE_ADDR": peer}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("proxies", "count", "xff", "peer", "expected"),
    [
        # No proxy configured: the header is whatever the client wrote, never read.
        ((), 0, "203.0.113.9", PROXY, PROXY),
        # One proxy: the hop it appended, not what the client put before it.
        ((), 1, CLIENT_A, PROXY, CLIENT_A),
        ((), 1, f"203.0.113.9, {CLIENT_A}", PROXY, CLIENT_A),
        ((), 2, f"203.0.113.9, {CLIENT_A}, 10.0.0.3", PROXY, CLIENT_A),
        ((), 1, None, PROXY, PROXY),
        ((), 3, CLIENT_A, PROXY, CLIENT_A),  # fewer hops than proxies: the farthest one recorded
        # Trusted networks: skip our hops from the right, the first other one is the client.
        (("10.0.0.0/8",), 0, f"203.0.113.9, {CLIENT_A}, 10.0.0.3", PROXY, CLIENT_A),
        (("10.0.0.0/8",), 0, f"{CLIENT_A}:5123", PROXY, CLIENT_A),
        (("10.0.0.0/8", "2001:db8:ffff::/48"), 0, "[2001:db8::1]:443, 2001:db8:ffff::5", PROXY, "2001:db8::1"),
        # A peer outside our networks is the client itself, whatever its header says.
        (("10.0.0.0/8",), 0, CLIENT_A, "203.0.113.50", "203.0.113.50"),
        # Not an address next to our proxy: only the proxy can be believed.
        (("10.0.0.0/8",), 0, "nonsense", PROXY, PROXY),
        # Every hop ours: a request from inside, the farthest of them.
        (("10.0.0.0/8",), 0, "10.1.2.3", PROXY, "10.1.2.3"),
    ],
)
def test_client_address(settings, proxies, count, xff, peer, expected):
    settings.TRUSTED_PROXIES = list(proxies)
    settings.TRUSTED_PROXY_COUNT = count
    request = _request(xff, peer)
    assert client_address(request) == expected
    # allauth's limits ask the same question and get the same answer.
    assert get_adapter(request).get_client_ip(request) == expected


# --- codes and enrollment keys --------------------------------------------------------


def _redeem(client, code: str, xff: str | None = None):
    extra = {"REMOTE_ADDR": PROXY}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return client.post(reverse("redeem_code"), {"code": code}, **extra)


def _fail_codes(client, n: int, xff: str | None = None):
    for _ in range(n):
        assert _redeem(client, "WRONG-WRONG-WRONG", xff).status_code == 400


def test_behind_a_trusted_proxy_two_clients_are_counted_apart(client_for, course, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.CODE_REDEEM_RATE_PER_IP = "5/10m"
    _fail_codes(client_for(UserFactory()), 5, xff=CLIENT_A)
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)

    # Client A's address has used its limit, whoever is there...
    assert _redeem(client_for(UserFactory()), code.code, xff=CLIENT_A).status_code == 429
    # ...client B, behind the same proxy, has not.
    learner = UserFactory()
    assert _redeem(client_for(learner), code.code, xff=CLIENT_B).status_code == 200
    assert Enrollment.objects.filter(user=learner, course=course, is_active=True).exists()


def test_without_trusted_proxies_a_forged_header_is_ignored(client_for, course, settings):
    settings.CODE_REDEEM_RATE_PER_IP = "5/10m"
    _fail_codes(client_for(UserFactory()), 5, xff=CLIENT_A)
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    # Another "address" in the header changes nothing: the peer is the one counted.
    assert _redeem(client_for(UserFactory()), code.code, xff=CLIENT_B).status_code == 429


def test_behind_a_trusted_proxy_a_forged_first_hop_is_ignored(client_for, course, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.CODE_REDEEM_RATE_PER_IP = "5/10m"
    guesser = client_for(UserFactory())
    for i in range(5):
        assert _redeem(guesser, "WRONG-WRONG-WRONG", xff=f"203.0.113.{i}, {CLIENT_A}").status_code == 400
    code = EnrollmentCodeFactory(courses=[course])
    assert _redeem(client_for(UserFactory()), code.code, xff=f"203.0.113.99, {CLIENT_A}").status_code == 429


def test_an_ipv6_network_of_64_is_one_address_for_the_limit(client_for, course, settings):
    settings.CODE_REDEEM_RATE_PER_IP = "5/10m"
    guesser = client_for(UserFactory())
    for i in range(5):
        response = guesser.post(reverse("redeem_code"), {"code": "WRONG-WRONG-WRONG"}, REMOTE_ADDR=f"2001:db8:1:2::{i + 1}")
        assert response.status_code == 400
    code = EnrollmentCodeFactory(courses=[course], max_uses=None)
    # Any address of the same /64 (the same host, picking a fresh address) has used the limit...
    assert client_for(UserFactory()).post(reverse("redeem_code"), {"code": code.code}, REMOTE_ADDR="2001:db8:1:2::ff").status_code == 429
    # ...another /64 has not.
    assert client_for(UserFactory()).post(reverse("redeem_code"), {"code": code.code}, REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


def test_two_learners_using_up_their_codes_limit_do_not_lock_out_a_third_at_the_same_address(client_for, course):
    # The default limits: per user tight, per address loose.
    for _ in range(2):
        user_client = client_for(UserFactory())
        _fail_codes(user_client, 10)
        assert _redeem(user_client, "WRONG-WRONG-WRONG").status_code == 429  # each used up their own limit
    learner = UserFactory()
    code = EnrollmentCodeFactory(courses=[course])
    assert _redeem(client_for(learner), code.code).status_code == 200
    assert Enrollment.objects.filter(user=learner, course=course, is_active=True).exists()


def test_three_learners_using_up_their_key_limit_do_not_lock_out_a_fourth_at_the_same_address(client_for):
    keyed = CourseFactory(enrollment_key="sesame")
    url = reverse("self_enroll", args=[keyed.key])
    for _ in range(3):
        user_client = client_for(UserFactory())
        for _ in range(10):
            assert user_client.post(url, {"enrollment_key": "wrong"}, REMOTE_ADDR=PROXY).status_code == 302
        assert user_client.post(url, {"enrollment_key": "wrong"}, REMOTE_ADDR=PROXY).status_code == 429
    learner = UserFactory()
    assert client_for(learner).post(url, {"enrollment_key": "sesame"}, REMOTE_ADDR=PROXY).status_code == 302
    assert Enrollment.objects.filter(user=learner, course=keyed, is_active=True).exists()


# --- logins -----------------------------------------------------------------------------


def _login(client, login: str, password: str, xff: str | None = None):
    client.logout()
    extra = {"REMOTE_ADDR": PROXY}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return client.post(reverse("account_login"), {"login": login, "password": password}, **extra)


def _user(username: str):
    user = UserFactory(username=username, email=f"{username}@example.com")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_ten_failed_logins_over_five_usernames_do_not_lock_everyone_at_the_address_out(client):
    for name in ["ann", "bob", "cy", "dee", "eve"]:
        _user(name)
        for _ in range(2):
            assert _login(client, name, "not-the-password").status_code == 200
    _user("fay")
    assert _login(client, "fay", PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_login_limit_per_address_counts_each_client(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    _user("ann")
    for name in ["x1", "x2", "x3"]:
        assert _login(client, name, "wrong", xff=CLIENT_A).status_code == 200
    # Client A is locked out (allauth's limit per address, on our client address)...
    assert _login(client, "ann", PASSWORD, xff=CLIENT_A).status_code == 429
    # ...client B behind the same proxy is not.
    assert _login(client, "ann", PASSWORD, xff=CLIENT_B).status_code == 302


def test_without_trusted_proxies_the_login_limit_ignores_a_forged_header(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "3/m/ip"}
    _user("ann")
    for i, name in enumerate(["x1", "x2", "x3"]):
        assert _login(client, name, "wrong", xff=f"203.0.113.{i}").status_code == 200
    assert _login(client, "ann", PASSWORD, xff=CLIENT_B).status_code == 429
