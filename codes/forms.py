from django import forms
from django.conf import settings

from courses.models import MAX_DURATION_DAYS, Course
from organisations.models import Group

from .models import site_today
from .services import MAX_COUNT, MAX_PREFIX_LENGTH


class UsesMode:
    SINGLE = "single"
    MULTI = "multi"
    UNLIMITED = "unlimited"
    CHOICES = [(SINGLE, "Single use (one learner per code)"), (MULTI, "Multi-use (a set number)"), (UNLIMITED, "Unlimited")]


class CourseChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.display_name} ({obj.key})"


class CodeGenerateForm(forms.Form):
    """Options of a generation. ``courses`` and ``groups`` offer only what the
    user may manage, so choosing anything else is a validation error."""

    courses = CourseChoiceField(
        queryset=Course.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 4}),
        help_text="Codes unlock every chosen course and group.",
    )
    groups = forms.ModelMultipleChoiceField(queryset=Group.objects.none(), required=False, widget=forms.SelectMultiple(attrs={"size": 4}))
    count = forms.IntegerField(label="Number of codes", min_value=1, max_value=MAX_COUNT, initial=10, help_text=f"1 to {MAX_COUNT} at a time.")
    # The metaclass takes declared fields off the class, so this does not shadow Form.prefix.
    prefix = forms.CharField(  # type: ignore[assignment]
        label="Code prefix", required=False, max_length=MAX_PREFIX_LENGTH,
        help_text=f"Optional, up to {MAX_PREFIX_LENGTH} letters, digits and dashes, for example SPRING2026.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "pattern": "[A-Za-z0-9-]*"}),
    )
    expires_on = forms.DateField(label="Expiry date", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    uses_mode = forms.ChoiceField(label="Max uses per code", choices=UsesMode.CHOICES, initial=UsesMode.SINGLE, widget=forms.RadioSelect)
    max_uses = forms.IntegerField(label="Uses per code (multi-use)", required=False, min_value=2, initial=10)
    may_exceed_cap = forms.BooleanField(
        label="Allow enrollment past the course's cap", required=False,
        help_text="Without this, a code does not enroll anyone into a course that is full.",
    )

    duration_days = forms.IntegerField(
        label="Days of access from redeeming", required=False, min_value=1, max_value=MAX_DURATION_DAYS,
        error_messages={
            "min_value": f"Days of access must be between 1 and {MAX_DURATION_DAYS} (ten years), or blank.",
            "max_value": f"Days of access must be between 1 and {MAX_DURATION_DAYS} (ten years), or blank.",
            "invalid": "Give a whole number of days.",
        },
        help_text="For example 365 for a year of access. Blank: each course's default period.",
    )

    def __init__(self, *args, courses, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_on"].help_text = f"Optional. Codes work until the end of this day ({settings.TIME_ZONE} time)."
        self.fields["courses"].queryset = courses
        self.fields["groups"].queryset = groups
        if not groups.exists():
            self.fields["groups"].widget = forms.MultipleHiddenInput()

    def clean_prefix(self):
        return self.cleaned_data["prefix"].strip()

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("courses") and not cleaned.get("groups"):
            self.add_error("courses", "Choose at least one course or group for the codes to unlock.")
        mode = cleaned.get("uses_mode")
        if mode == UsesMode.MULTI and not cleaned.get("max_uses") and "max_uses" not in self.errors:
            self.add_error("max_uses", "Say how many times each code may be used.")
        expires_on = cleaned.get("expires_on")
        if expires_on is not None and expires_on < site_today():
            self.add_error("expires_on", "The expiry date must be today or later.")
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
            "max_uses": max_uses,
            "may_exceed_cap": cleaned["may_exceed_cap"],
            "duration_days": cleaned.get("duration_days"),
        }


class RedeemForm(forms.Form):
    code = forms.CharField(
        label="Enrollment code", max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false", "placeholder": "ABCD-EFGH-JKMN"}),
    )
