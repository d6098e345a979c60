"""allauth's hooks for this site.

Without ``django.contrib.sites`` allauth names the site after the request's
host ("Hello from 127.0.0.1:8000!"); its emails here say ``SITE_NAME`` instead,
in the body and in the subject prefix. Their links (activation, password reset)
are absolute from ``SITE_URL``, like every other link in our emails: never from
the request's Host header, which a visitor controls (a reset link poisoned with
another host would hand the reset key to that host).

Failed logins are limited per account, not per login as typed: ``learner``,
``LEARNER`` and ``learner@example.com`` are one account and share one count
(allauth's own per-login key would give each spelling its own five guesses).
A refused login is answered 429 by ``accounts.views.LoginView``.

Emails and usernames: allauth compares addresses ignoring case only, so
``clean_email`` hands it the spelling an account already has for the same
email key (``idn@пример.рф`` for ``idn@xn--e1afmkfd.xn--p1ai``), and its own
checks (address change, password reset) see one address; sign-up checks the
key itself (``accounts.forms.SignupForm``). ``clean_username`` refuses
look-alike usernames (``accounts.forms.clean_new_username``).

allauth's limits per address (failed logins, sign-ups, resets) take the client's
address from ``client_address``, like ours, so they count each client behind
our proxies apart and never believe a forged X-Forwarded-For."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import ngettext

from enrollment_site.lib.attempt_limits import Attempt, attempt_count, attempt_reset, client_address, parse_rate

from .forms import clean_new_username
from .selectors import user_by_email, user_by_identifier
from .usernames import username_normalize

LOGIN_RATE_GROUP = "login"
# Set on the request when a login is refused for too many failures: the seconds
# until it may be tried again (the login view's Retry-After).
RETRY_AFTER_ATTR = "login_retry_after"


@dataclass(frozen=True)
class SiteIdentity:
    """What allauth's templates read from ``current_site``."""

    name: str
    domain: str


def site_link(path: str) -> str:
    """An absolute link to ``path`` on SITE_URL."""
    return settings.SITE_URL.rstrip("/") + path


def site_identity() -> SiteIdentity:
    return SiteIdentity(name=settings.SITE_NAME, domain=urlsplit(settings.SITE_URL).netloc or settings.SITE_URL)


def _allauth_longest_window() -> int:
    """allauth does not say how long its refusal lasts; its longest window for
    failed logins ("10/m/ip": the rate, then whom it counts) is the upper bound."""
    rates = (settings.ACCOUNT_RATE_LIMITS.get("login_failed") or "").split(",")
    return max((parse_rate("/".join(rate.split("/")[:2]))[1] for rate in rates if rate.strip()), default=60)


def _account_rates() -> list[tuple[str, str]]:
    return [("account", settings.LOGIN_FAILED_RATE_PER_ACCOUNT)]


def login_key(login: str) -> str:
    """What failed logins are counted under: the account ``login`` names
    (username or email, any case), else the login itself ignoring case and
    spaces. Unknown logins are counted as well, so that being locked out tells
    nobody whether an account exists."""
    account = user_by_identifier(login, active_only=False)
    return f"account:{account.pk}" if account is not None else f"login:{login.strip().lower()}"


class AccountAdapter(DefaultAccountAdapter):
    _account_attempt: Attempt | None = None

    def get_client_ip(self, request: HttpRequest) -> str:
        # allauth's limits per address count the same client as ours (TRUSTED_PROXIES /
        # TRUSTED_PROXY_COUNT); its own reading trusts a count of proxies only.
        return client_address(request)

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """allauth's per-address limit, then ours per account; both count the
        attempt before the password is checked (a success gives it back)."""
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            setattr(request, RETRY_AFTER_ATTR, _allauth_longest_window())
            raise
        login = credentials.get("email") or credentials.get("username") or ""
        attempt = attempt_count(request, group=LOGIN_RATE_GROUP, rates=_account_rates(), keys={"account": login_key(login)})
        if attempt.refused:
            # Refused unevaluated: it costs nothing against the address either.
            super()._rollback_login_failed_rl_usage()
            setattr(request, RETRY_AFTER_ATTR, attempt.wait)
            minutes = -(-(attempt.wait or 0) // 60)
            raise ValidationError(
                ngettext(
                    "Too many failed login attempts for this account. Try again in %(minutes)s minute, or reset your password.",
                    "Too many failed login attempts for this account. Try again in %(minutes)s minutes, or reset your password.",
                    minutes,
                ) % {"minutes": minutes},
                code="too_many_login_attempts",
            )
        self._account_attempt = attempt

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        # allauth calls this after a password reset by email (itself rate limited):
        # the failures were guesses at the old password, so the account starts afresh.
        super()._delete_login_attempts_cached_email(request, **credentials)
        login = credentials.get("email") or credentials.get("username") or ""
        attempt_reset(request, group=LOGIN_RATE_GROUP, rates=_account_rates(), keys={"account": login_key(login)})

    def _rollback_login_failed_rl_usage(self) -> None:
        # allauth calls this after a successful login: it gives back both counts.
        super()._rollback_login_failed_rl_usage()
        if self._account_attempt is not None:
            self._account_attempt.give_back()

    def clean_email(self, email: str) -> str:
        email = super().clean_email(email)
        account = user_by_email(email) if email else None
        return account.email.lower() if account is not None else email

    def clean_username(self, username: str, shallow: bool = False) -> str:
        # NFKC first, so that allauth's "taken" check sees ``ｌearner1`` as ``learner1``;
        # shallow (allauth generating a name) skips the database, as allauth does.
        username = super().clean_username(username_normalize(username), shallow=shallow)
        return clean_new_username(username, lookalikes=not shallow)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        site = site_identity()
        context = {"current_site": site, "site_name": site.name, **context}
        super().send_mail(template_prefix, email, context)

    def format_email_subject(self, subject: str) -> str:
        return f"[{settings.SITE_NAME}] {subject}"

    def get_email_confirmation_url(self, request, emailconfirmation) -> str:
        return site_link(reverse("account_confirm_email", args=[emailconfirmation.key]))

    def get_reset_password_from_key_url(self, key: str) -> str:
        # allauth's own shape: one opaque key standing for "<uidb36>-<token>".
        path = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
        return site_link(path.replace("UID-KEY", quote(key)))
