from django import forms

from accounts.selectors import user_by_identifier

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
        identifier = self.cleaned_data["identifier"].strip()
        user = user_by_identifier(identifier, active_only=False)
        if user is None:
            raise forms.ValidationError(f"No user with the username or email “{identifier}”.")
        if not user.is_active:
            raise forms.ValidationError(f"The account “{user.username}” is not active.")
        self.cleaned_data["user"] = user
        return identifier

