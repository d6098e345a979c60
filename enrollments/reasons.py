"""The texts enrollments writes itself and shows later: the reasons of the
audit trail (and of the outbox), why an undo leaves a person alone, why a
confirmed batch's job changed nothing. Stored in English as they are here,
for the programs that read them (the API, the CSV exports); pages show them
in the reader's language through ``enrollment_site.lib.stored_texts.shown``.
A reason a person typed is stored and shown as typed."""

import re

from django.utils import translation
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_noop

from enrollment_site.lib.stored_texts import plurals, shown_error, stored_text

from .models import PREVIEW_LABELS, Source

ACTIVATION = stored_text(gettext_noop("Auto-enroll allowance used on account activation"))
EXPIRY = stored_text(gettext_noop("The period of access ended."))
RENEWAL = stored_text(gettext_noop("Recurring enrollment: a new period of access."))
TEAM_MEMBER_ADDED = stored_text(gettext_noop("Added to the course team"))
DJANGO_ADMIN = stored_text(gettext_noop("Django admin"))
DEMO_DATA = stored_text(gettext_noop("Demo data"))
# Placeholders: the undone operation's id.
UNDO = stored_text(gettext_noop("Undo of operation %(operation)s"))
# Quoted in the email to each person an undo changes back.
UNDONE_EMAIL = stored_text(gettext_noop("An earlier change to your enrollment was undone."))


def source_label_english(value: str) -> str:
    """A source's label in English, as a stored note quotes it (the value itself if unknown)."""
    with translation.override("en"):
        return str(Source(value).label) if value in Source.values else value


def source_label_shown(english: str) -> str:
    """A source's label stored in English, in the active language."""
    with translation.override("en"):
        by_english = {str(label): value for value, label in Source.choices}
    return str(Source(by_english[english]).label) if english in by_english else english


# Why undo leaves a person alone: the undo preview, its job and its message say it.
# A name, a date and a cohort are shown as they are; the source in the reader's language.
LEFT_ALONE_CHANGED_BY = stored_text(
    gettext_noop("changed since by %(actor)s at %(when)s (%(source)s)"), actor=str, when=str, source=source_label_shown,
)
LEFT_ALONE_CHANGED_BY_SYSTEM = stored_text(gettext_noop("changed since by the system at %(when)s (%(source)s)"), when=str, source=source_label_shown)
LEFT_ALONE_OUTSIDE = stored_text(gettext_noop("changed since, outside the audit trail: not as the operation left it"))
LEFT_ALONE_NO_COHORT = stored_text(gettext_noop("the cohort %(cohort)s no longer exists"), cohort=str)


def _outcome_shown(english: str) -> str:
    with translation.override("en"):
        by_english = {str(label): outcome for outcome, label in PREVIEW_LABELS.items()}
    return str(PREVIEW_LABELS[by_english[english]]) if english in by_english else english


_MORE = re.compile(r" and (?P<n>[\d,]+) more$")


def changes_listed_shown(listed: str) -> str:
    """A stored list of preview changes ("cy: will enroll → already enrolled; … and 3 more")
    with the outcomes, and the count of the others, in the active language."""
    more = _MORE.search(listed)
    if more:
        listed = listed[:more.start()]
    shown_items = []
    for item in listed.split("; "):
        identifier, colon, change = item.rpartition(": ")
        then, arrow, now = change.partition(" → ")
        shown_items.append(f"{identifier}{colon}{_outcome_shown(then)}{arrow}{_outcome_shown(now) if arrow else ''}")
    others = number_format(int(more.group("n").replace(",", "")), force_grouping=True) if more else ""
    return "; ".join(shown_items) + (gettext(PREVIEW_CHANGED_MORE) % {"n": others} if more else "")


# What a confirmed batch's job says when the course changed since its preview
# (the job keeps it as its error; the Membership page shows it translated).
PREVIEW_GONE = stored_text(gettext_noop("Nothing was changed: the course changed since the preview. Submit the list again."))
PREVIEW_RENEWED = stored_text(gettext_noop("Nothing was changed: the course changed since the preview. A new preview is ready to confirm."))
# ``listed``: the first ten "identifier: outcome then → outcome now", "; "-separated, then " and N more" if there are more.
PREVIEW_CHANGED = plurals.ngettext(
    "Nothing was changed: the course changed since the preview for %(n)s person (%(listed)s). A new preview is ready to confirm.",
    "Nothing was changed: the course changed since the preview for %(n)s people (%(listed)s). A new preview is ready to confirm.",
    "n", listed=changes_listed_shown,
)
PREVIEW_CHANGED_MORE = gettext_noop(" and %(n)s more")
# An uploaded file a batch job could not read: its name and the reader's refusal.
UPLOAD_REFUSED = stored_text(gettext_noop("%(file)s: %(error)s Nothing was changed."), file=str, error=shown_error)
