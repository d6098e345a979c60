from django import forms
from django.conf import settings
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from courses.models import MAX_DURATION_DAYS, Course
from organisations.models import Group

from .models import zone_today
from .services import EXPIRY_DATE_FORMAT, MAX_COUNT, MAX_PREFIX_LENGTH, time_zone_choices, valid_time_zone


class UsesMode:
    SINGLE = "single"
    MULTI = "multi"
    UNLIMITED = "unlimited"
    CHOICES = [
        (SINGLE, gettext_lazy("Single use (one learner per code)")),
        (MULTI, gettext_lazy("Multi-use (a set number)")),
        (UNLIMITED, pgettext_lazy("uses of a code", "Unlimited")),
    ]


DURATION_ERROR = gettext_lazy("Days of access must be between 1 and %(max)s (ten years), or blank.")


class CourseChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.display_name} ({obj.key})"


class CodeGenerateForm(forms.Form):
    """Options of a generation. ``courses`` and ``groups`` offer only what the
    user may manage, so choosing anything else is a validation error."""

    courses = CourseChoiceField(
        label=gettext_lazy("Courses"), queryset=Course.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 4}),
        help_text=gettext_lazy("Codes unlock every chosen course and group."),
    )
    groups = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Groups"), queryset=Group.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    count = forms.IntegerField(label=gettext_lazy("Number of codes"), min_value=1, max_value=MAX_COUNT, initial=10)
    # The metaclass takes declared fields off the class, so this does not shadow Form.prefix.
    prefix = forms.CharField(  # type: ignore[assignment]
        label=gettext_lazy("Code prefix"), required=False, max_length=MAX_PREFIX_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off", "pattern": "[A-Za-z0-9-]*"}),
    )
    expires_on = forms.DateField(label=gettext_lazy("Expiry date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Expiry time zone"), choices=time_zone_choices, required=False,
        help_text=gettext_lazy("Codes work until the end of the expiry day in this time zone."),
        error_messages={"invalid_choice": gettext_lazy("Choose a time zone from the list, such as Europe/Paris.")},
    )
    uses_mode = forms.ChoiceField(
        label=gettext_lazy("Max uses per code"), choices=UsesMode.CHOICES, initial=UsesMode.SINGLE, widget=forms.RadioSelect,
    )
    max_uses = forms.IntegerField(label=gettext_lazy("Uses per code (multi-use)"), required=False, min_value=2, initial=10)
    may_exceed_cap = forms.BooleanField(
        label=gettext_lazy("Allow enrollment past the course's cap"), required=False,
        help_text=gettext_lazy("Without this, a code does not enroll anyone into a course that is full."),
    )

    duration_days = forms.IntegerField(
        label=gettext_lazy("Days of access from redeeming"), required=False, min_value=1, max_value=MAX_DURATION_DAYS,
        help_text=gettext_lazy("For example 365 for a year of access. Blank: each course's default period."),
    )

    def __init__(self, *args, courses, groups, **kwargs):
        super().__init__(*args, **kwargs)
        limit = MAX_DURATION_DAYS
        self.fields["duration_days"].error_messages.update({
            "min_value": DURATION_ERROR % {"max": limit},
            "max_value": DURATION_ERROR % {"max": limit},
            "invalid": _("Give a whole number of days."),
        })
        self.fields["count"].help_text = _("1 to %(max)s at a time.") % {"max": MAX_COUNT}
        self.fields["prefix"].help_text = _("Optional, up to %(max)s letters, digits and dashes, for example SPRING2026.") % {
            "max": MAX_PREFIX_LENGTH
        }
        self.fields["expires_on"].help_text = _("Optional. Codes work until the end of this day in the time zone below.")
        self.fields["courses"].queryset = courses
        self.fields["groups"].queryset = groups
        if not groups.exists():
            self.fields["groups"].widget = forms.MultipleHiddenInput()

    def clean_time_zone(self):
        # Left out (a form from before the choice, a script): the generating user's zone, as the form offers it.
        return self.cleaned_data["time_zone"] or self.initial.get("time_zone") or settings.TIME_ZONE

    def clean_prefix(self):
        return self.cleaned_data["prefix"].strip()

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("courses") and not cleaned.get("groups"):
            self.add_error("courses", _("Choose at least one course or group for the codes to unlock."))
        mode = cleaned.get("uses_mode")
        if mode == UsesMode.MULTI and not cleaned.get("max_uses") and "max_uses" not in self.errors:
            self.add_error("max_uses", _("Say how many times each code may be used."))
        expires_on, time_zone = cleaned.get("expires_on"), cleaned.get("time_zone") or ""
        if expires_on is not None and valid_time_zone(time_zone) and expires_on < zone_today(time_zone):
            self.add_error(
                "expires_on",
                _("The expiry date must be today or later (today is %(today)s in %(time_zone)s).")
                % {"today": date_format(zone_today(time_zone), EXPIRY_DATE_FORMAT), "time_zone": time_zone},
            )
        return cleaned

    def service_kwargs(self) -> dict:
        cleaned = self.cleaned_data
        mode = cleaned["uses_mode"]
        max_uses = {UsesMode.SINGLE: 1, UsesMode.UNLIMITED: None}.get(mode, cleaned.get("max_uses"))
        return {
            "courses": list(cleaned["courses"]),
            "groups": list(cleaned["groups"]),
            "count": cleaned["count"],
            "prefix": cleaned["prefix"],
            "expires_on": cleaned.get("expires_on"),
            "time_zone": cleaned["time_zone"],
            "max_uses": max_uses,
            "may_exceed_cap": cleaned["may_exceed_cap"],
            "duration_days": cleaned.get("duration_days"),
        }


class RedeemForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Enrollment code"), max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false", "placeholder": "ABCD-EFGH-JKMN"}),
    )


def default_time_zone(user) -> str:
    """The zone a user's new codes expire in unless they choose another: their own, else the site's."""
    zone = getattr(user, "time_zone", "") or settings.TIME_ZONE
    return zone if valid_time_zone(zone) else settings.TIME_ZONE
