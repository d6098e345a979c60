"""allauth's hooks for this site.

Without ``django.contrib.sites`` allauth names the site after the request's
host ("Hello from 127.0.0.1:8000!"); its emails here say ``SITE_NAME`` instead,
in the body and in the subject prefix. Their links (activation, password reset)
stay allauth's: built in the request, on the address the person is using."""

from dataclasses import dataclass
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


@dataclass(frozen=True)
class SiteIdentity:
    """What allauth's templates read from ``current_site``."""

    name: str
    domain: str


def site_identity() -> SiteIdentity:
    return SiteIdentity(name=settings.SITE_NAME, domain=urlsplit(settings.SITE_URL).netloc or settings.SITE_URL)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        site = site_identity()
        context = {"current_site": site, "site_name": site.name, **context}
        super().send_mail(template_prefix, email, context)

    def format_email_subject(self, subject: str) -> str:
        return f"[{settings.SITE_NAME}] {subject}"
