"""What the organisation pages say about counts: sentences with proper plurals
(ngettext), never "(s)" or "1 people"."""

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import ngettext


def count_text(n: int, singular: str, plural: str) -> str:
    """``singular`` or ``plural`` (each with a ``%(count)s``) for ``n``, the number grouped by thousands."""
    return ngettext(singular, plural, n) % {"count": intcomma(n)}


def enrollments_made_text(made: int, *, already: int = 0) -> str:
    text = count_text(made, "%(count)s enrollment made", "%(count)s enrollments made")
    if already:
        text += "; " + count_text(already, "%(count)s was already enrolled and left as it was",
                                  "%(count)s were already enrolled and left as they were")
    return text + "."


def enrollments_changed_text(*, made: int, ended: int) -> str:
    return count_text(made, "%(count)s enrollment made", "%(count)s enrollments made") + f", {intcomma(ended)} ended."


def members_added_text(counts: dict[str, int], *, kind_label: str, enrollments_made: int) -> str:
    """The one-line summary after adding members, e.g. "2 added, 1 moved from
    another department, 1 not found; 3 enrollments made."."""
    parts = []
    for outcome, singular, plural in (
        ("added", "%(count)s added", "%(count)s added"),
        ("moved", f"%(count)s moved from another {kind_label}", f"%(count)s moved from another {kind_label}"),
        ("already a member", "%(count)s already a member", "%(count)s already members"),
        ("no such user", "%(count)s with no active account", "%(count)s with no active account"),
        ("invalid", "%(count)s invalid", "%(count)s invalid"),
    ):
        if counts.get(outcome):
            parts.append(count_text(counts[outcome], singular, plural))
    return (", ".join(parts) or "Nobody added") + "; " + enrollments_made_text(enrollments_made)
