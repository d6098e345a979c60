"""The time zones a person may choose: the IANA names Python's zoneinfo knows."""

import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


@cache
def time_zone_names() -> frozenset[str]:
    """Every zone name ``zoneinfo`` can load, such as ``Europe/Amsterdam``."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """Refuse a name that is not a time zone (blank is allowed: the site's zone)."""
    if value and value not in time_zone_names():
        raise ValidationError(
            _("“%(zone)s” is not a time zone this site knows. Choose one from the list, such as Europe/Amsterdam."),
            code="unknown_time_zone", params={"zone": value},
        )


def time_zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zones grouped by their region (Africa, America, Europe…), each group
    sorted, for a select with option groups; zones without a region (UTC) come last."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(time_zone_names()):
        region, _sep, place = name.partition("/")
        if not place or region in ("Etc", "SystemV", "US", "Canada", "Brazil", "Mexico", "Chile"):
            # Aliases and legacy names: only the canonical region/city names and UTC are offered.
            if name != "UTC":
                continue
            region = "UTC"
        # The whole name in the list too: a closed select shows the chosen option alone.
        groups.setdefault(region, []).append((name, name.replace("_", " ")))
    return sorted(groups.items(), key=lambda item: (item[0] == "UTC", item[0]))
