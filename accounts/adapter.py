"""allauth's hooks for this site.

Without ``django.contrib.sites`` allauth names the site after the request's
host ("Hello from 127.0.0.1:8000!"); its emails here say ``SITE_NAME`` instead,
in the body and in the subject prefix. Their links (activation, password reset)
are absolute from ``SITE_URL``, like every other link in our emails: never from
the request's Host header, which a visitor controls (a reset link poisoned with
another host would hand the reset key to that host)."""

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.urls import reverse


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


class AccountAdapter(DefaultAccountAdapter):
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
