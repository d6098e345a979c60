"""What the organisation pages say about counts: sentences with proper plurals
(ngettext, one whole sentence or phrase per message), never "(s)" or "1 people".
Each text is worked out when shown, in the language of the page."""

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from enrollments.models import Outcome

from .models import UnitKind


def count_text(n: int, text: str) -> str:
    """``text`` (an ``ngettext`` for ``n`` with a ``%(count)s``) with the number grouped by thousands."""
    return text % {"count": intcomma(n)}


def made_text(made: int) -> str:
    return count_text(made, ngettext("%(count)s enrollment made", "%(count)s enrollments made", made))


def enrollments_made_text(made: int, *, already: int = 0) -> str:
    if not already:
        return _("%(made)s.") % {"made": made_text(made)}
    left = count_text(already, ngettext("%(count)s was already enrolled and left as it was",
                                        "%(count)s were already enrolled and left as they were", already))
    return _("%(made)s; %(left)s.") % {"made": made_text(made), "left": left}


def enrollments_changed_text(*, made: int, ended: int) -> str:
    ended_text = count_text(ended, ngettext("%(count)s ended", "%(count)s ended", ended))
    return _("%(made)s, %(ended)s.") % {"made": made_text(made), "ended": ended_text}


def moved_text(n: int, kind: str) -> str:
    """"2 moved from another department": the unit's kind is part of the sentence (its gender differs by language)."""
    if kind == UnitKind.COMPANY:
        return count_text(n, ngettext("%(count)s moved from another company", "%(count)s moved from another company", n))
    return count_text(n, ngettext("%(count)s moved from another department", "%(count)s moved from another department", n))


def members_added_text(counts: dict[str, int], *, kind: str, enrollments_made: int) -> str:
    """The one-line summary after adding members, e.g. "2 added, 1 moved from
    another department, 1 not found; 3 enrollments made."."""
    phrases = {
        "added": lambda n: count_text(n, ngettext("%(count)s added", "%(count)s added", n)),
        "moved": lambda n: moved_text(n, kind),
        "already a member": lambda n: count_text(n, ngettext("%(count)s already a member", "%(count)s already members", n)),
        "no such user": lambda n: count_text(n, ngettext("%(count)s with no active account", "%(count)s with no active account", n)),
        "invalid": lambda n: count_text(n, ngettext("%(count)s invalid", "%(count)s invalid", n)),
    }
    parts = [say(counts[outcome]) for outcome, say in phrases.items() if counts.get(outcome)]
    # Translators: joins the phrases of a list: "2 added, 1 invalid".
    added = _(", ").join(parts) or _("Nobody added")
    return _("%(added)s; %(made)s.") % {"added": added, "made": made_text(enrollments_made)}


def _summary_phrase(key: str, n: int) -> str | None:
    """The phrase for one count of a job's summary, None for a key with no phrase."""
    if key == "people_updated":
        return ngettext("%(count)s person updated", "%(count)s people updated", n)
    if key == "enrolled":
        return ngettext("%(count)s enrollment made", "%(count)s enrollments made", n)
    if key == "reactivated":
        return ngettext("%(count)s enrollment reactivated", "%(count)s enrollments reactivated", n)
    if key == "unenrolled":
        return ngettext("%(count)s enrollment ended", "%(count)s enrollments ended", n)
    if key == "allowances":
        return ngettext("%(count)s invitation created", "%(count)s invitations created", n)
    if key == "left_alone":
        return ngettext("%(count)s left alone (already enrolled or invited)", "%(count)s left alone (already enrolled or invited)", n)
    return None


# The counts a job's summary holds, in the order a sentence names them.
SUMMARY_KEYS = ("people_updated", "enrolled", "reactivated", "unenrolled", "allowances", "left_alone")


def job_summary_text(summary: dict) -> str:
    """"1 person updated, 2 enrollments made, 2 invitations created, 2 left alone (already enrolled or invited)."
    Zero counts are left out; anything unforeseen is still named with its count."""
    parts = [count_text(summary[key], _summary_phrase(key, summary[key]) or "") for key in SUMMARY_KEYS if summary.get(key)]
    # An import counts an outcome it has no phrase for under the outcome's key, and names it by its label.
    parts += [
        _("%(count)s %(outcome)s") % {"count": intcomma(n), "outcome": Outcome.label_of(key)}
        for key, n in summary.items() if key not in SUMMARY_KEYS and key != "finished" and isinstance(n, int) and n
    ]
    if not parts:
        return _("Nothing needed changing.")
    return _("%(list)s.") % {"list": _(", ").join(parts)}


def job_progress_text(*, kind: str, done: int, total: int) -> str:
    """"7 of 7 rows" for an import; "3 of 5 enrollment changes" for an assignment or a rule."""
    values = {"done": intcomma(done), "total": intcomma(total)}
    if kind == "check":
        return _("File checked.") if total and done >= total else _("Reading and checking the file…")
    if kind == "import":
        return ngettext("%(done)s of %(total)s row", "%(done)s of %(total)s rows", total) % values
    return ngettext("%(done)s of %(total)s enrollment change", "%(done)s of %(total)s enrollment changes", total) % values


def new_unit_label(kind: str) -> str:
    """"New department": one message per kind, as the word's gender differs by language."""
    return {
        UnitKind.COMPANY: _("New company"), UnitKind.DEPARTMENT: _("New department"), UnitKind.TEAM: _("New team"),
        UnitKind.FUNCTION: _("New function"), UnitKind.QUALIFICATION: _("New qualification"), UnitKind.GROUP: _("New group"),
    }[UnitKind(kind)]


def delete_unit_label(kind: str) -> str:
    """"Delete department", one message per kind like ``new_unit_label``."""
    return {
        UnitKind.COMPANY: _("Delete company"), UnitKind.DEPARTMENT: _("Delete department"), UnitKind.TEAM: _("Delete team"),
        UnitKind.FUNCTION: _("Delete function"), UnitKind.QUALIFICATION: _("Delete qualification"), UnitKind.GROUP: _("Delete group"),
    }[UnitKind(kind)]
