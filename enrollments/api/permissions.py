"""Permission-checked fetches and throttles of the REST API."""

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from rest_framework import throttling
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.settings import api_settings

from courses.models import Course
from courses.rules import can_manage_course


def courses_for_bulk_enroll(*, user, keys: list[str]) -> list[Course]:
    """The courses with these keys, in the order given, if ``user`` may manage
    every one of them.

    Raises NotFound (404) naming every unknown key, else PermissionDenied (403)
    naming every course the user may not manage: both before anything is
    written, so a refused call changes nothing in any course."""
    by_key = Course.objects.in_bulk(keys, field_name="key")
    missing = [key for key in keys if key not in by_key]
    if missing:
        raise NotFound(_("No course with the key %(keys)s. Nothing was changed.") % {"keys": ", ".join(missing)})
    refused = [key for key in keys if not can_manage_course(user, by_key[key])]
    if refused:
        raise PermissionDenied(_("You are not on the team of %(keys)s. Nothing was changed in any course.") % {"keys": ", ".join(refused)})
    return [by_key[key] for key in keys]


class ScopedRateThrottle(throttling.ScopedRateThrottle):
    """DRF's scoped throttle, keyed by user (so by token) for authenticated
    callers, with the rate read from the settings at request time: DRF's own
    class reads it once at import, which settings overrides cannot reach."""

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.") from None
