from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from courses.models import MAX_DURATION_DAYS, Course
from enrollment_site.lib.identifiers import count_tokens

from .models import MAX_RECUR_MONTHS, EnrollmentRule, Group, OrgUnit, UnitKind
from .rules import team_reports
from .selectors import courses_open_to_reports

User = get_user_model()


def course_label(course) -> str:
    return f"{course.display_name} ({course.key})"


class CourseLabels:
    """Courses are listed by name and key (their __str__ is the bare key)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("course", "courses"):
            if name in self.fields:
                self.fields[name].label_from_instance = course_label


class UnitForm(forms.ModelForm):
    class Meta:
        model = OrgUnit
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class GroupForm(forms.ModelForm):
    class Meta:
        model = Group
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class MembersAddForm(forms.Form):
    identifiers = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label=gettext_lazy("Usernames or emails"),
                                  help_text=gettext_lazy("Separated by commas, spaces or new lines. They are enrolled in the unit's courses."))
    email_students = forms.BooleanField(required=False, label=gettext_lazy("Notify people by email"))

    def clean_identifiers(self):
        """Unknown names are not an error here: each gets its own outcome and the others are added."""
        text = self.cleaned_data["identifiers"]
        count = count_tokens(text)
        if count > settings.ENROLLMENT_MAX_IDENTIFIERS:
            raise forms.ValidationError(
                ngettext("%(count)s name is more than the %(max)s one add may hold. Split the list; nothing was changed.",
                         "%(count)s names are more than the %(max)s one add may hold. Split the list; nothing was changed.", count)
                % {"count": number_format(count, force_grouping=True), "max": number_format(settings.ENROLLMENT_MAX_IDENTIFIERS, force_grouping=True)}
            )
        return text


class MembersRemoveForm(forms.Form):
    users = forms.ModelMultipleChoiceField(queryset=User.objects.all(), widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Members"))
    also_unenroll = forms.BooleanField(required=False, label=gettext_lazy("Also unenroll those who no longer qualify"))


class AssignForm(CourseLabels, forms.Form):
    course = forms.ModelChoiceField(queryset=Course.objects.order_by("display_name"), required=False, label=gettext_lazy("Course"))
    qualification = forms.ModelChoiceField(queryset=OrgUnit.objects.filter(kind=UnitKind.QUALIFICATION), required=False,
                                           label=gettext_lazy("Qualification"))
    duration_days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_DURATION_DAYS, label=gettext_lazy("Days of access"),
        help_text=gettext_lazy("How long the enrollments it makes last; blank for the course's default."),
    )
    recur_months = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_RECUR_MONTHS, label=gettext_lazy("Re-enroll every N months"),
        help_text=gettext_lazy("For compliance courses: when a period ends, a new one of N months begins; blank for no renewal."),
    )
    email_students = forms.BooleanField(required=False, label=gettext_lazy("Notify people by email"))

    def clean(self):
        data = super().clean()
        if bool(data.get("course")) == bool(data.get("qualification")):
            raise forms.ValidationError(_("Choose a course or a qualification."))
        return data


class UnlinkForm(forms.Form):
    also_unenroll = forms.BooleanField(required=False, label=gettext_lazy("Also unenroll those who no longer qualify"))


class RuleForm(CourseLabels, forms.ModelForm):
    email_students = forms.BooleanField(required=False, label=gettext_lazy("Notify people by email"))

    class Meta:
        model = EnrollmentRule
        fields = ["name", "courses", "company", "department", "team", "function", "group", "language",
                  "added_before", "added_after", "added_within_days", "manager", "retroactive", "unenroll_unmatched", "is_active",
                  "duration_days", "recur_months"]
        widgets = {
            "added_before": forms.DateInput(attrs={"type": "date"}),
            "added_after": forms.DateInput(attrs={"type": "date"}),
            "courses": forms.SelectMultiple(attrs={"size": 6}),
        }
        labels = {"duration_days": gettext_lazy("Days of access"), "recur_months": gettext_lazy("Re-enroll every N months")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["manager"].queryset = User.objects.filter(reports__isnull=False).distinct().order_by("username")

    def clean(self):
        data = super().clean()
        if not any(data.get(name) not in (None, "") for name in EnrollmentRule.CRITERIA):
            raise forms.ValidationError(_("Set at least one criterion."))
        return data


class CoursesForm(CourseLabels, forms.Form):
    courses = forms.ModelMultipleChoiceField(queryset=Course.objects.order_by("display_name"), widget=forms.SelectMultiple(attrs={"size": 8}),
                                             label=gettext_lazy("Courses"))
    email_students = forms.BooleanField(required=False, label=gettext_lazy("Notify by email"))


class TeamEnrollForm(CoursesForm):
    """My Team: only the manager's reports, and only courses open to them
    (courses_open_to_reports); team_enroll checks the same again when writing."""

    users = forms.ModelMultipleChoiceField(queryset=User.objects.none(), widget=forms.CheckboxSelectMultiple, label=gettext_lazy("Team members"),
                                           error_messages={"required": gettext_lazy("Choose at least one team member.")})

    def __init__(self, *args, manager, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["users"].queryset = team_reports(manager=manager)
        courses = self.fields["courses"]
        courses.queryset = courses_open_to_reports(manager=manager)
        courses.help_text = _("Courses your team members could join themselves now, and courses you manage.")
        courses.error_messages["invalid_choice"] = _(
            "That course is not open to your team: it is closed, full, by invitation only or needs an enrollment key. "
            "Ask its course team to enroll them."
        )


class ImportTemplateForm(CourseLabels, forms.Form):
    courses = forms.ModelMultipleChoiceField(queryset=Course.objects.order_by("display_name"),
                                             widget=forms.SelectMultiple(attrs={"size": 6}),
                                             label=gettext_lazy("Courses"), help_text=gettext_lazy("One column per course; an x in it means enroll."),
                                             error_messages={"required": gettext_lazy(
                                                 "Choose at least one course: the template has a column for each course you choose.")})

    def __init__(self, *args, course=None, **kwargs):
        super().__init__(*args, **kwargs)
        if course is not None:
            self.fields["courses"].queryset = Course.objects.filter(pk=course.pk)
            self.fields["courses"].initial = [course.pk]


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Import file (.xlsx or UTF-8 .csv)"))
    email_students = forms.BooleanField(required=False, label=gettext_lazy("Notify people by email"))


class ProfileForm(forms.Form):
    """Where a person sits; saved through user_profile_update (courses and rules follow)."""

    company = forms.ModelChoiceField(queryset=OrgUnit.objects.filter(kind=UnitKind.COMPANY), required=False, label=gettext_lazy("Company"))
    department = forms.ModelChoiceField(queryset=OrgUnit.objects.filter(kind=UnitKind.DEPARTMENT), required=False, label=gettext_lazy("Department"))
    teams = forms.ModelMultipleChoiceField(queryset=OrgUnit.objects.filter(kind=UnitKind.TEAM), required=False, label=gettext_lazy("Teams"))
    functions = forms.ModelMultipleChoiceField(queryset=OrgUnit.objects.filter(kind=UnitKind.FUNCTION), required=False,
                                               label=pgettext_lazy("organisation unit", "Functions"))
    manager = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("username"), required=False,
                                     widget=forms.TextInput, label=gettext_lazy("Manager"),
                                     help_text=gettext_lazy("The manager's user id."))
    language = forms.CharField(max_length=10, required=False, label=gettext_lazy("Language"),
                               help_text=gettext_lazy("A short code such as en or nl; rules match it as it is."))


def focus_first_error(form) -> None:
    """Put the cursor in the first field with an error when the page comes back
    (autofocus also scrolls it into view; no script needed)."""
    for name in form.errors:
        if name in form.fields:
            form.fields[name].widget.attrs["autofocus"] = True
            return
