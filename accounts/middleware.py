"""The signed-in person's language and time zone, for everything their request shows."""

import zoneinfo

from django.utils import timezone, translation

from .time_zones import time_zone_names


def user_language(user) -> str | None:
    """The shipped language (a code of settings.LANGUAGES) the person chose, or None:
    none chosen, or one the site does not ship (``language`` is also an attribute
    enrollment rules match on, so it may hold any short code)."""
    code = (getattr(user, "language", "") or "").strip().lower()
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


class UserPreferencesMiddleware:
    """After AuthenticationMiddleware (and LocaleMiddleware): the person's own
    ``language`` replaces what LocaleMiddleware chose from the cookie and the
    browser, and their ``time_zone`` is activated, so dates, times and texts are
    theirs. Anonymous visitors keep LocaleMiddleware's choice and the site's zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            if language := user_language(user):
                translation.activate(language)
                request.LANGUAGE_CODE = language
            if user.time_zone in time_zone_names():
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            else:
                timezone.deactivate()
        else:
            timezone.deactivate()
        # Both stay active after the response, as LocaleMiddleware's language does: a
        # streamed download is written after the middleware returned. Every request
        # sets them afresh above, so none inherits another's.
        return self.get_response(request)
