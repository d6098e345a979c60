from crispy_forms.bootstrap import StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row
from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

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
        help_texts = {"key": _("For example course-v1:Demo+ENR101+2026.")}


class TeamMemberAddForm(forms.Form):
    identifier = forms.CharField(
        label=_("Username or email"),
        max_length=320,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": _("username or name@example.com")}),
    )
    role = forms.ChoiceField(label=_("Role"), choices=CourseRole.Role.choices, initial=CourseRole.Role.STAFF)

    def __init__(self, *args, **kwargs):
        # The ids the Membership tab has always had (id_team_identifier, id_team_role): the
        # batch form on the same page owns the plain ones.
        kwargs.setdefault("auto_id", "id_team_%s")
        super().__init__(*args, **kwargs)
        self.helper = FormHelper(self)
        self.helper.form_tag = False  # the page's <form> carries the action and its label
        self.helper.layout = Layout(
            Row(
                Column("identifier", css_class="col-md-5"),
                Column("role", css_class="col-md-3"),
                Column(StrictButton(gettext("Add to team"), type="submit", css_class="btn-outline-primary"), css_class="col-md-2 mb-3"),
                css_class="g-2 align-items-end",
            )
        )

    def clean_identifier(self):
        identifier = self.cleaned_data["identifier"].strip()
        user = user_by_identifier(identifier, active_only=False)
        if user is None:
            raise forms.ValidationError(gettext("No user with the username or email “%(identifier)s”.") % {"identifier": identifier})
        if not user.is_active:
            raise forms.ValidationError(gettext("The account “%(username)s” is not active.") % {"username": user.username})
        self.cleaned_data["user"] = user
        return identifier

