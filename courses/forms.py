from django import forms

from .models import Course, CourseRole


class CourseForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = [
            "key",
            "display_name",
            "description",
            "start",
            "end",
            "enrollment_start",
            "enrollment_end",
            "modes",
            "self_enrollment",
            "enrollment_key",
            "max_enrollments",
            "invitation_only",
        ]
        widgets = {
            "start": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "end": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "enrollment_start": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "enrollment_end": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {"key": "For example course-v1:Demo+ENR101+2026."}


class TeamMemberAddForm(forms.Form):
    identifier = forms.CharField(
        label="Username or email",
        max_length=320,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "username or name@example.com"}),
    )
    role = forms.ChoiceField(choices=CourseRole.Role.choices, initial=CourseRole.Role.STAFF)

    def clean_identifier(self):
        from .services import user_by_username_or_email

        identifier = self.cleaned_data["identifier"].strip()
        user = user_by_username_or_email(identifier)
        if user is None:
            raise forms.ValidationError(f"No user with the username or email “{identifier}”.")
        if not user.is_active:
            raise forms.ValidationError(f"The account “{user.username}” is not active.")
        self.cleaned_data["user"] = user
        return identifier


class ChartRangeForm(forms.Form):
    """The period of the Course info chart, from the query string (?range=30d)."""

    RANGES = {"30d": ("30 days", 30), "1y": ("1 year", 365), "all": ("All", None)}
    DEFAULT = "all"

    range = forms.ChoiceField(choices=[(key, label) for key, (label, _) in RANGES.items()], required=False)

    def chosen(self) -> str:
        """The chosen range's key; an unknown or missing one falls back to the default quietly,
        as a hand-edited or outdated link should still show a chart."""
        if self.is_valid() and self.cleaned_data["range"]:
            return self.cleaned_data["range"]
        return self.DEFAULT

    def days(self) -> int | None:
        return self.RANGES[self.chosen()][1]
