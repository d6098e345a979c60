"""The forms of the course settings page: the settings themselves and a cohort's name."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from courses.models import MAX_DURATION_DAYS, Course, Mode

from .forms import lazy_interpolated

# What a datetime-local input sends and shows (minutes, no seconds).
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _when(label, help_text) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label, required=False, help_text=help_text, input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )


class CourseSettingsForm(forms.Form):
    """The settings a course admin edits. Values are checked here one by one
    (and default mode against the modes); what needs the course's current
    state (the cap against the number enrolled) is the service's."""

    display_name = forms.CharField(label=_("Display name"), max_length=255)
    enrollment_start = _when(_("Enrollment opens"), _("Blank: open from the start."))
    enrollment_end = _when(_("Enrollment closes"), _("Blank: never closes. Must be after it opens."))
    self_enrollment = forms.BooleanField(label=_("Learners may enroll themselves"), required=False)
    invitation_only = forms.BooleanField(label=_("Invitation only (only invited people may enroll themselves)"), required=False)
    enrollment_key = forms.CharField(
        label=_("Enrollment key"), max_length=100, required=False, strip=True,
        help_text=_("If set, learners type it to enroll themselves (invited people need not). Blank: no key."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    max_enrollments = forms.IntegerField(
        label=_("Cap on enrolled learners"), required=False, min_value=1, max_value=2_147_483_647,
        help_text=_("Blank: no cap. It holds back self-enrollment, My Team and codes; the course team may enroll past it."),
    )
    confirm_cap = forms.BooleanField(label=_("Set the cap anyway, below the number enrolled"), required=False)
    modes = forms.MultipleChoiceField(
        label=_("Modes offered"), choices=Mode.choices, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Offer at least one mode.")},
        help_text=_("Learners already in a mode no longer offered keep it."),
    )
    default_mode = forms.ChoiceField(label=_("Default mode"), choices=Mode.choices, help_text=_("The mode new enrollments get; one of the modes offered."))
    # The period every way in gives when it sets none of its own (``enrollments.periods.period_for``).
    default_duration_days = forms.IntegerField(
        label=_("Default days of access"), required=False, min_value=1, max_value=MAX_DURATION_DAYS,
        error_messages={
            "min_value": lazy_interpolated(gettext_noop("A duration is from 1 to %(max)s days (ten years)."), max=MAX_DURATION_DAYS),
            "max_value": lazy_interpolated(gettext_noop("A duration is from 1 to %(max)s days (ten years)."), max=MAX_DURATION_DAYS),
            "invalid": _("Give a whole number of days."),
        },
        help_text=lazy_interpolated(gettext_noop("Days of access from enrolling (1 to %(max)s); blank for no limit."), grouped=True, max=MAX_DURATION_DAYS),
    )
    default_access_until = _when(
        _("Default end of access"), _("Access ends then for everyone enrolled without a period of their own; blank for no end. "
                                      "With a duration too, the earlier end applies."),
    )
    expiry_reminder_days = forms.IntegerField(
        label=_("Remind learners this many days before their access ends"), required=False, min_value=1, max_value=365,
        error_messages={
            "min_value": _("Remind from 1 to 365 days before the end, or leave it blank for no reminder."),
            "max_value": _("Remind from 1 to 365 days before the end, or leave it blank for no reminder."),
            "invalid": _("Give a whole number of days."),
        },
        help_text=_("One email per learner and period. Blank: no reminder."),
    )
    expiry_reminder_team = forms.BooleanField(
        label=_("Also send the course team a summary of whose access is ending"), required=False,
    )
    language = forms.ChoiceField(
        label=_("Language of emails to people without an account"), required=False,
        choices=[("", _("The site's language")), *settings.LANGUAGES],
        help_text=_("Invitations to register go out in it; people with an account get emails in their own language."),
    )

    @classmethod
    def initial_for(cls, course: Course) -> dict:
        return {
            "display_name": course.display_name, "enrollment_start": course.enrollment_start, "enrollment_end": course.enrollment_end,
            "self_enrollment": course.self_enrollment, "invitation_only": course.invitation_only, "enrollment_key": course.enrollment_key,
            "max_enrollments": course.max_enrollments, "modes": course.mode_list, "default_mode": course.default_mode,
            "default_duration_days": course.default_duration_days, "default_access_until": course.default_access_until,
            "expiry_reminder_days": course.expiry_reminder_days, "expiry_reminder_team": course.expiry_reminder_team,
            "language": course.language,
        }

    def clean(self):
        data = super().clean()
        start, end = data.get("enrollment_start"), data.get("enrollment_end")
        if start and end and end <= start:
            self.add_error("enrollment_end", gettext("Enrollment must close after it opens."))
        modes, default = data.get("modes"), data.get("default_mode")
        if modes and default and default not in modes:
            self.add_error("default_mode", gettext("The default mode must be one of the modes offered."))
        return data

    def settings(self) -> dict:
        """The cleaned values as ``course_settings_update`` takes them: modes
        as the course stores them, the default first, then in the usual order."""
        data = self.cleaned_data
        modes = [data["default_mode"], *(m for m in Mode.values if m in data["modes"] and m != data["default_mode"])]
        return {
            "display_name": data["display_name"], "enrollment_start": data["enrollment_start"], "enrollment_end": data["enrollment_end"],
            "self_enrollment": data["self_enrollment"], "invitation_only": data["invitation_only"], "enrollment_key": data["enrollment_key"],
            "max_enrollments": data["max_enrollments"], "modes": ",".join(modes),
            "default_duration_days": data["default_duration_days"], "default_access_until": data["default_access_until"],
            "expiry_reminder_days": data["expiry_reminder_days"], "expiry_reminder_team": data["expiry_reminder_team"],
            "language": data["language"],
        }


class CohortNameForm(forms.Form):
    name = forms.CharField(label=_("Cohort name"), max_length=255, strip=True)


class CohortDeleteForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"), max_length=500, required=False, strip=True, help_text=_("Kept in the audit log of each member's move."),
    )
