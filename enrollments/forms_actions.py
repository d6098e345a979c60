"""The form of a learners-table action's confirm page: the reason, and the
mode or cohort to change to (choices from the course itself), or how long to
extend access."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from courses.models import MAX_DURATION_DAYS, Cohort, Course

from . import periods
from .forms import REASON_MAX_LENGTH
from .models import RosterAction

NO_COHORT = "none"


class RosterActionForm(forms.Form):
    """One action's options. Only the fields the action needs are present:
    ``mode`` for change mode (the course's modes), ``cohort`` for move to a
    cohort (the course's cohorts, or no cohort), ``extend_days`` or
    ``extend_until`` for extend (one of the two), ``email_students`` for
    unenroll and enroll again (the emails the batch sends)."""

    reason = forms.CharField(
        label=_("Reason (optional)"), required=False, max_length=REASON_MAX_LENGTH, strip=True,
        help_text=_("Kept in the audit log; quoted in the email, if one is sent."),
    )

    def __init__(self, *args, course: Course, action: str, many: bool = False, current_mode: str = "", current_cohort: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course
        self.action = action
        if action in (RosterAction.CHANGE_MODE, RosterAction.MOVE_COHORT, RosterAction.EXTEND):
            self.fields["reason"].help_text = gettext("Kept in the audit log (no email is sent for this change).")
        if action == RosterAction.EXTEND:
            # Text fields read by periods' parsers, so the messages are the API's and the batch's.
            self.fields["extend_days"] = forms.CharField(
                label=gettext("Extend by (days)"), required=False, max_length=10,
                help_text=gettext("Added to each end of access (to today, for one that has ended): 1 to %(max)s days.") % {"max": MAX_DURATION_DAYS},
                widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
            )
            self.fields["extend_until"] = forms.CharField(
                label=gettext("Or until (date)"), required=False, max_length=30,
                help_text=gettext("The new last day of access, in the site's time zone."),
                widget=forms.DateInput(attrs={"type": "date"}),
            )
            self.order_fields(["extend_days", "extend_until", "reason"])
        elif action == RosterAction.CHANGE_MODE:
            modes = course.mode_list
            # Offered first: a mode the learner is not in already.
            initial = next((m for m in modes if m != current_mode), modes[0])
            self.fields["mode"] = forms.ChoiceField(label=gettext("New mode"), choices=[(m, m) for m in modes], initial=initial)
            self.order_fields(["mode", "reason"])
        elif action == RosterAction.MOVE_COHORT:
            cohorts = [(str(c.pk), c.name) for c in Cohort.objects.filter(course=course).order_by("name")]
            initial = next((pk for pk, name in cohorts if name != current_cohort), NO_COHORT)
            self.fields["cohort"] = forms.ChoiceField(label=gettext("Move to"), choices=[*cohorts, (NO_COHORT, gettext("No cohort"))], initial=initial)
            self.order_fields(["cohort", "reason"])
        else:
            self.fields["email_students"] = forms.BooleanField(
                label=gettext("Email the learners") if many else gettext("Email the learner"), required=False, initial=True,
                help_text=gettext("The same message the batch enrollment sends."),
            )

    def clean_cohort(self) -> Cohort | None:
        value = self.cleaned_data["cohort"]
        if value == NO_COHORT:
            return None
        cohort = Cohort.objects.filter(course=self.course, pk=value).first()
        if cohort is None:  # deleted since the page was shown
            raise forms.ValidationError(gettext("That cohort no longer exists; choose another."))
        return cohort

    def clean_extend_days(self):
        try:
            return periods.parse_duration(self.cleaned_data["extend_days"], field="extend_days")
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["extend_days"]) from None

    def clean_extend_until(self):
        try:
            end = periods.parse_moment(self.cleaned_data["extend_until"], field="extend_until", end_of_day=True)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["extend_until"]) from None
        if end is not None and end <= timezone.now():
            raise forms.ValidationError(gettext("That day has passed: choose today or a later day."))
        return end

    def clean(self):
        data = super().clean()
        if self.action == RosterAction.EXTEND and not self.errors:
            if (data.get("extend_days") is None) == (data.get("extend_until") is None):
                self.add_error("extend_days", gettext("Give a number of days or a date, one of the two."))
        return data

    def action_options(self) -> dict:
        """The keyword arguments ``roster_apply`` takes from this form."""
        data = self.cleaned_data
        options = {"reason": data.get("reason", "")}
        if self.action == RosterAction.CHANGE_MODE:
            options["mode"] = data["mode"]
        elif self.action == RosterAction.MOVE_COHORT:
            options["cohort"] = data["cohort"]
        elif self.action == RosterAction.EXTEND:
            options["extend_days"], options["extend_until"] = data["extend_days"], data["extend_until"]
        else:
            options["email_students"] = data["email_students"]
        return options
