"""A course's own settings and cohorts, changed by its team from the settings page.

``course_settings_update`` reads as lock → decide → write: the course row is
locked (the lock self-enrollment takes to check the cap, so a new cap and a
learner taking the last seat queue behind each other), the active enrollments
counted, ``course_settings_decide`` (pure) validates and diffs, and the
changed fields are written with one history row (``CourseSettingsChange``).
The cohort services keep each cohort change in the same history; deleting a
cohort also audits each member's move to no cohort in the enrollment audit
trail, where undo finds it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext, pgettext

from accounts.types import Actor, recorded_user
from courses.models import MAX_DURATION_DAYS, Cohort, CohortMembership, Course, CourseSettingsChange, validate_modes
from courses.rules import can_change_course_settings, can_manage_course
from enrollment_site.lib.bulk import bulk_insert
from enrollment_site.lib.stored_texts import plurals, shown, stored_text

from ..models import Enrollment, EnrollmentAudit, Source, State
from ..selectors import active_count as active_count_of

# The settings the page edits, in the order the history lists them.
SETTINGS_FIELDS = (
    "display_name", "enrollment_start", "enrollment_end", "self_enrollment", "enrollment_key", "invitation_only", "max_enrollments", "modes",
    "default_duration_days", "default_access_until", "expiry_reminder_days", "expiry_reminder_team", "language",
)
# In English in the stored summary (``CourseSettingsChange.summary``, read in
# the admin); pages rebuild the summary in the reader's language from the
# row's ``changes`` (``settings_change_summary``).
FIELD_LABELS = {
    "display_name": gettext_noop("Display name"), "enrollment_start": gettext_noop("Enrollment opens"),
    "enrollment_end": gettext_noop("Enrollment closes"), "self_enrollment": gettext_noop("Self-enrollment"),
    "enrollment_key": gettext_noop("Enrollment key"), "invitation_only": gettext_noop("Invitation only"),
    "max_enrollments": gettext_noop("Cap"), "modes": gettext_noop("Modes (default first)"),
    "default_duration_days": gettext_noop("Default days of access"), "default_access_until": gettext_noop("Default end of access"),
    "expiry_reminder_days": gettext_noop("Reminder days before the end"), "expiry_reminder_team": gettext_noop("Summary to the course team"),
    "language": gettext_noop("Language of emails to people without an account"),
}
DATETIME_FIELDS = frozenset({"enrollment_start", "enrollment_end", "default_access_until"})
# The cohort changes' summaries, stored in English as here.
COHORT_CREATED = stored_text(gettext_noop("Cohort %(name)s created"), name=str)
COHORT_RENAMED = stored_text(gettext_noop("Cohort %(old)s renamed %(new)s"), old=str, new=str)
COHORT_DELETED = plurals.ngettext(
    "Cohort %(name)s deleted; its %(n)s member is in no cohort now", "Cohort %(name)s deleted; its %(n)s members are in no cohort now", "n",
    name=str,
)
# The longest notice an expiry reminder may give (the course field's validator).
MAX_REMINDER_DAYS = 365
# An alphabet without look-alikes (no 0/O, 1/I/L), as for codes: a key is read aloud and typed.
KEY_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
KEY_GROUPS, KEY_GROUP_LENGTH = 3, 4


def enrollment_key_generate() -> str:
    """A strong enrollment key from ``secrets``: three groups of four characters
    of a 31-letter alphabet (about 59 bits), such as ``K7QF-M2XP-9HTR``; wrong
    keys are rate limited on top of that."""
    return "-".join("".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_GROUP_LENGTH)) for _ in range(KEY_GROUPS))


class CapBelowCount(ValidationError):
    """The new cap is below the number of learners enrolled and was not confirmed."""


@dataclass(frozen=True)
class SettingsChanges:
    """What a save changes: field → (before, after), and the history's summary."""

    fields: dict[str, tuple[Any, Any]]

    @property
    def summary(self) -> str:
        """In English, as the history stores it."""
        return _summary(self.fields, translated=False)

    @property
    def summary_shown(self) -> str:
        """In the active language, as the page says it."""
        return _summary(self.fields, translated=True)

    def as_history(self) -> dict[str, list]:
        """The history's ``changes``: JSON values, the enrollment key never written out."""
        return {name: [_json(name, before), _json(name, after)] for name, (before, after) in self.fields.items()}


def course_settings_decide(*, current: dict[str, Any], wanted: dict[str, Any], active_count: int, confirm_cap: bool) -> SettingsChanges:
    """Validate ``wanted`` (some of the SETTINGS_FIELDS) against the course's
    ``current`` values and its ``active_count`` of enrolled learners; return
    what changes. Raises ValidationError (per field) for: enrollment closing
    before or when it opens, modes that are unknown, repeated or none, a
    default duration outside 1 to ten years, reminder days outside 1 to 365,
    and (CapBelowCount) a new cap below the number enrolled unless ``confirm_cap``."""
    errors: dict[str, list[ValidationError]] = {}
    duration = wanted.get("default_duration_days")
    if duration is not None and not 1 <= duration <= MAX_DURATION_DAYS:
        errors.setdefault("default_duration_days", []).append(
            ValidationError(_("A duration is from 1 to %(max)s days (ten years).") % {"max": MAX_DURATION_DAYS})
        )
    reminder = wanted.get("expiry_reminder_days")
    if reminder is not None and not 1 <= reminder <= MAX_REMINDER_DAYS:
        errors.setdefault("expiry_reminder_days", []).append(
            ValidationError(_("Remind from 1 to %(max)s days before the end, or leave it blank for no reminder.") % {"max": MAX_REMINDER_DAYS})
        )
    start, end = wanted.get("enrollment_start"), wanted.get("enrollment_end")
    if start and end and end <= start:
        errors.setdefault("enrollment_end", []).append(ValidationError(_("Enrollment must close after it opens.")))
    if "modes" in wanted:
        try:
            validate_modes(wanted["modes"])
        except ValidationError as exc:
            errors.setdefault("modes", []).append(exc)
    cap = wanted.get("max_enrollments")
    if cap is not None and cap != current.get("max_enrollments") and cap < active_count and not confirm_cap:
        errors.setdefault("max_enrollments", []).append(CapBelowCount(
            ngettext(
                "%(count)s learner is enrolled, more than a cap of %(cap)s. Nobody is unenrolled by it, but nobody else can enroll themself "
                "until fewer than %(cap)s are. Tick the box below to set it anyway.",
                "%(count)s learners are enrolled, more than a cap of %(cap)s. Nobody is unenrolled by it, but nobody else can enroll themself "
                "until fewer than %(cap)s are. Tick the box below to set it anyway.",
                active_count,
            ) % {"count": number_format(active_count, force_grouping=True), "cap": number_format(cap, force_grouping=True)},
            code="cap_below_count",
        ))
    if errors:
        raise ValidationError(errors)
    return SettingsChanges({name: (current.get(name), wanted[name]) for name in SETTINGS_FIELDS if name in wanted and wanted[name] != current.get(name)})


@transaction.atomic
def course_settings_update(*, course: Course, actor: Actor, confirm_cap: bool = False, **wanted: Any) -> SettingsChanges:
    """Change the course's settings (keyword arguments among SETTINGS_FIELDS;
    ``modes`` a comma-separated list, default mode first) for a course admin or
    platform admin (PermissionDenied otherwise, as ValidationError is for bad
    values: nothing is changed either way). Returns what changed; a change is
    written with one history row, no change writes nothing."""
    if not can_change_course_settings(actor, course):
        raise PermissionDenied(_("Only course admins may change the course's settings."))
    unknown = set(wanted) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown settings: %(names)s.") % {"names": ", ".join(sorted(unknown))})
    # Lock the course row, as self-enrollment does for the cap: a new cap is
    # decided on the count no learner can change meanwhile.
    locked = Course.objects.select_for_update(no_key=True).get(pk=course.pk)
    current = {name: getattr(locked, name) for name in SETTINGS_FIELDS}
    # Counted only for a new cap: on a course of a million, a save that leaves the cap alone costs no count.
    new_cap = wanted.get("max_enrollments")
    active_count = active_count_of(course=course) if new_cap is not None and new_cap != current["max_enrollments"] else 0
    changes = course_settings_decide(current=current, wanted=wanted, active_count=active_count, confirm_cap=confirm_cap)
    if not changes.fields:
        return changes
    Course.objects.filter(pk=course.pk).update(**{name: after for name, (_before, after) in changes.fields.items()})
    CourseSettingsChange.objects.create(
        course=course, actor=recorded_user(actor), kind=CourseSettingsChange.Kind.SETTINGS, changes=changes.as_history(), summary=changes.summary[:500],
    )
    for name, (_before, after) in changes.fields.items():
        setattr(course, name, after)
    return changes


def _json(name: str, value: Any) -> Any:
    if name == "enrollment_key":
        return "(set)" if value else ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _words(translated: bool) -> dict[str, str]:
    if not translated:
        return {word: word for word in ("set", "removed", "changed", "none", "on", "off")}
    return {
        "set": pgettext("enrollment key", "set"), "removed": pgettext("enrollment key", "removed"),
        "changed": pgettext("enrollment key", "changed"), "none": pgettext("setting value", "none"),
        "on": pgettext("setting value", "on"), "off": pgettext("setting value", "off"),
    }


def _summary(fields: dict[str, tuple[Any, Any]], *, translated: bool) -> str:
    words = _words(translated)
    if not translated:
        return "; ".join(f"{FIELD_LABELS[name]}: {_describe(name, before, after, words)}" for name, (before, after) in fields.items())
    return "; ".join(
        _("%(setting)s: %(change)s") % {"setting": _(FIELD_LABELS[name]), "change": _describe(name, before, after, words)}
        for name, (before, after) in fields.items()
    )


def _describe(name: str, before: Any, after: Any, words: dict[str, str]) -> str:
    if name == "enrollment_key":
        return words["set"] if not before else words["removed"] if not after else words["changed"]
    return f"{_shown(before, words)} → {_shown(after, words)}"


def _shown(value: Any, words: dict[str, str]) -> str:
    if value is None or value == "":
        return words["none"]
    if isinstance(value, bool):
        return words["on"] if value else words["off"]
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _from_json(name: str, value: Any) -> Any:
    if name in DATETIME_FIELDS and isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return value


def settings_change_summary(change: CourseSettingsChange) -> str:
    """A settings-history row's summary in the active language (dates in the
    active time zone), made again from its ``kind`` and ``changes``; where
    those do not say enough (a row from before they were kept), its stored
    summary, translated where it is a known text."""
    changes = change.changes or {}
    try:
        if change.kind == CourseSettingsChange.Kind.SETTINGS:
            fields = {name: (_from_json(name, changes[name][0]), _from_json(name, changes[name][1])) for name in SETTINGS_FIELDS if name in changes}
            if fields:
                return _summary(fields, translated=True)
        elif change.kind == CourseSettingsChange.Kind.COHORT_CREATED:
            return _(COHORT_CREATED) % {"name": changes["name"][1]}
        elif change.kind == CourseSettingsChange.Kind.COHORT_RENAMED:
            return _(COHORT_RENAMED) % {"old": changes["name"][0], "new": changes["name"][1]}
        elif change.kind == CourseSettingsChange.Kind.COHORT_DELETED:
            members = int(changes["members"])
            return ngettext(COHORT_DELETED.singular, COHORT_DELETED.plural, members) % {
                "name": changes["name"][0], "n": number_format(members, force_grouping=True),
            }
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return shown(change.summary)


# --- cohorts ---------------------------------------------------------------------------------


def _cohort_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("A cohort needs a name."))
    if len(name) > 255:
        raise ValidationError(_("A cohort's name has at most 255 characters."))
    return name


def _check_team(actor: Actor, course: Course) -> None:
    if not can_manage_course(actor, course):
        raise PermissionDenied(_("You are not on this course's team."))


def _name_taken(course: Course, name: str, *, other_than: int | None = None) -> bool:
    # Case-insensitive, so that "Red" and "red" are not two cohorts to choose between.
    cohorts = Cohort.objects.filter(course=course).annotate(key=Lower("name")).filter(key=name.lower())
    return cohorts.exclude(pk=other_than).exists() if other_than else cohorts.exists()


@transaction.atomic
def cohort_create(*, course: Course, name: str, actor: Actor) -> Cohort:
    """Create a cohort of the course named ``name`` (stripped; unique in the
    course whatever its case), recorded in the course's settings history."""
    _check_team(actor, course)
    name = _cohort_name(name)
    if _name_taken(course, name):
        raise ValidationError(_("This course already has a cohort named %(name)s.") % {"name": name})
    try:
        with transaction.atomic():
            cohort = Cohort.objects.create(course=course, name=name)
    except IntegrityError as exc:  # created by someone else meanwhile (the unique constraint)
        raise ValidationError(_("This course already has a cohort named %(name)s.") % {"name": name}) from exc
    CourseSettingsChange.objects.create(
        course=course, actor=recorded_user(actor), kind=CourseSettingsChange.Kind.COHORT_CREATED, changes={"name": [None, name]},
        summary=(COHORT_CREATED % {"name": name})[:500],
    )
    return cohort


@transaction.atomic
def cohort_rename(*, cohort: Cohort, name: str, actor: Actor) -> Cohort:
    """Rename a cohort (its members stay), recorded in the settings history."""
    _check_team(actor, cohort.course)
    name = _cohort_name(name)
    old = cohort.name
    if name == old:
        return cohort
    if _name_taken(cohort.course, name, other_than=cohort.pk):
        raise ValidationError(_("This course already has a cohort named %(name)s.") % {"name": name})
    try:
        with transaction.atomic():
            Cohort.objects.filter(pk=cohort.pk).update(name=name)
    except IntegrityError as exc:
        raise ValidationError(_("This course already has a cohort named %(name)s.") % {"name": name}) from exc
    cohort.name = name
    CourseSettingsChange.objects.create(
        course=cohort.course, actor=recorded_user(actor), kind=CourseSettingsChange.Kind.COHORT_RENAMED, changes={"name": [old, name]},
        summary=(COHORT_RENAMED % {"old": old, "new": name})[:500],
    )
    return cohort


@transaction.atomic
def cohort_delete(*, cohort: Cohort, actor: Actor, reason: str = "") -> int:
    """Delete a cohort; its members fall back to no cohort. Each member's move
    is audited (cohort before and after, with ``reason``) under one operation
    id, and the deletion recorded in the settings history. Returns how many
    members it had. A fixed number of queries whatever the number of members."""
    import uuid

    course = cohort.course
    _check_team(actor, course)
    now = timezone.now()
    operation_id = uuid.uuid4()
    user = recorded_user(actor)
    # The cohort row locked first: a move into it waiting on this lock fails
    # on the missing row rather than recreating a membership of a deleted cohort.
    Cohort.objects.select_for_update().filter(pk=cohort.pk).values_list("pk", flat=True).get()
    # Each member with their enrollment's state and mode (none if they have no enrollment), in one query.
    enrollment = Enrollment.objects.filter(course=course, user=OuterRef("user_id"))
    members = list(
        CohortMembership.objects.filter(cohort=cohort).annotate(
            enrolled=Subquery(enrollment.values("is_active")[:1]), mode=Subquery(enrollment.values("mode")[:1]),
        ).values_list("user_id", "user__username", "enrolled", "mode")
    )
    bulk_insert(EnrollmentAudit, [
        {
            "created": now, "actor_id": user.pk if user else None, "course_id": course.pk, "user_id": user_id, "identifier": username,
            "state_before": _state(enrolled), "state_after": _state(enrolled), "source": Source.ROSTER, "reason": reason,
            "operation_id": operation_id, "mode_before": mode or "", "mode_after": mode or "", "cohort_before": cohort.name, "cohort_after": "",
        }
        for user_id, username, enrolled, mode in members
    ])
    CohortMembership.objects.filter(cohort=cohort).delete()
    Cohort.objects.filter(pk=cohort.pk).delete()
    CourseSettingsChange.objects.create(
        course=course, actor=user, kind=CourseSettingsChange.Kind.COHORT_DELETED, changes={"name": [cohort.name, None], "members": len(members)},
        summary=COHORT_DELETED.english(len(members), name=cohort.name)[:500],
    )
    return len(members)


def _state(enrolled: bool | None) -> str:
    return State.NONE if enrolled is None else State.ENROLLED if enrolled else State.UNENROLLED
