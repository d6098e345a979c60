"""What the organisation pages say about counts: sentences with proper plurals
(ngettext), never "(s)" or "1 people"."""

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import ngettext

from enrollments.models import Outcome


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


# The counts a job's summary holds, in the order a sentence names them.
SUMMARY_PHRASES = (
    ("people_updated", "%(count)s person updated", "%(count)s people updated"),
    ("enrolled", "%(count)s enrollment made", "%(count)s enrollments made"),
    ("reactivated", "%(count)s enrollment reactivated", "%(count)s enrollments reactivated"),
    ("unenrolled", "%(count)s enrollment ended", "%(count)s enrollments ended"),
    ("allowances", "%(count)s invitation created", "%(count)s invitations created"),
    ("left_alone", "%(count)s left alone (already enrolled or invited)", "%(count)s left alone (already enrolled or invited)"),
)


def job_summary_text(summary: dict) -> str:
    """"1 person updated, 2 enrollments made, 2 invitations created, 2 left alone (already enrolled or invited)."
    Zero counts are left out; anything unforeseen is still named with its count."""
    known = {key for key, _, _ in SUMMARY_PHRASES}
    parts = [count_text(summary[key], singular, plural) for key, singular, plural in SUMMARY_PHRASES if summary.get(key)]
    # An import counts an outcome it has no phrase for under the outcome's key, and names it by its label.
    parts += [f"{intcomma(n)} {Outcome.label_of(key)}" for key, n in summary.items() if key not in known and key != "finished" and isinstance(n, int) and n]
    return (", ".join(parts) or "Nothing needed changing") + "."


def job_progress_text(*, kind: str, done: int, total: int) -> str:
    """"7 of 7 rows" for an import; "3 of 5 enrollment changes" for an assignment or a rule."""
    values = {"done": intcomma(done), "total": intcomma(total)}
    if kind == "check":
        return "File checked." if total and done >= total else "Reading and checking the file…"
    if kind == "import":
        return ngettext("%(done)s of %(total)s row", "%(done)s of %(total)s rows", total) % values
    return ngettext("%(done)s of %(total)s enrollment change", "%(done)s of %(total)s enrollment changes", total) % values
