from crispy_forms.bootstrap import StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Field, Layout
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms import BoundField
from django.utils.formats import number_format
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_noop, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from courses.models import MAX_DURATION_DAYS
from enrollment_site.lib.identifiers import count_tokens

from .models import Action
from .periods import PeriodRequest, period_request
from .periods_asked import PERIOD_FIELDS

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
REASON_MAX_LENGTH = 500
NUL_IN_TEXT = _(
    "The text contains a NUL character (shown as �), which no username, email or reason has; it usually comes "
    "from pasting out of a binary file. Remove it and submit again. Nothing was changed."
)


def lazy_interpolated(message: str, *, grouped: bool = False, **values) -> str:
    """``message`` (marked with ``gettext_noop``) translated when it is shown, in the
    language of that request, with its ``%(name)s`` placeholders filled from ``values``
    (numbers grouped as that language groups them if ``grouped``): for class-level
    texts that carry a number."""

    def shown() -> str:
        return gettext(message) % {k: number_format(v, force_grouping=True) if grouped else v for k, v in values.items()}

    return lazy(shown, str)()


class BatchBoundField(BoundField):
    """A field of the batch form, described to assistive technology as the Membership tab
    always has: its help and its error carry the ids ``<name>-help`` and ``<name>-error``
    (written by ``enrollments/crispy/batch_field.html``), aria-describedby names them, the
    error first, and the field the form sends the focus to carries autofocus."""

    @property
    def help_id(self) -> str:
        return f"{self.name.replace('_', '-')}-help"

    @property
    def error_id(self) -> str:
        return f"{self.name.replace('_', '-')}-error"

    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        # Django's own aria-describedby names an "<id>_helptext" that the field template does not write.
        attrs.pop("aria-describedby", None)
        attrs.pop("aria-invalid", None)
        if self.help_text:
            attrs["aria-describedby"] = self.help_id
        if self.errors:
            attrs["aria-invalid"] = "true"
            attrs["aria-describedby"] = f"{self.error_id} {self.help_id}" if self.help_text else self.error_id
        if self.auto_id and self.auto_id == self.form.focus_id:
            attrs["autofocus"] = True
        return attrs


class ReasonInput(forms.TextInput):
    """A text box that always writes its value, empty included, right after its id and
    length: an emptied box reads ``value=""`` in the page, which is how the page shows
    (and its tests check) that no reason is carried over to the next batch."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget = context["widget"]
        first = {key: widget["attrs"].pop(key) for key in ("id", "maxlength") if key in widget["attrs"]}
        widget["attrs"] = {**first, "value": widget["value"] or "", **widget["attrs"]}
        widget["value"] = None  # written above, among the attributes
        return context


class BatchEnrollmentForm(forms.Form):
    bound_field_class = BatchBoundField

    identifiers = forms.CharField(
        label=_("Usernames or emails"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Separate with commas, spaces or new lines. Duplicates, case variants and the same person named by username and email count once."),
        error_messages={"null_characters_not_allowed": NUL_IN_TEXT},
    )
    file = forms.FileField(
        label=_("…or upload a CSV or text file"),
        required=False,
        widget=forms.FileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
        help_text=_(
            "UTF-8. A CSV is read by one column: by default the one headed email, username or identifier, otherwise the first; "
            "other columns such as names are ignored. A .txt file is read like the box above. A file is read in the background; you then see its first rows, choose the column and preview what it does."
        ),
    )
    auto_enroll = forms.BooleanField(
        label=_("Auto enroll"), required=False, initial=True,
        help_text=_("People without an account are enrolled as soon as they register and activate with that address. Has no effect on Unenroll."),
    )
    email_students = forms.BooleanField(label=_("Notify people by email"), required=False, initial=True)
    reason = forms.CharField(
        label=_("Reason (optional; kept in the audit trail and quoted in the emails)"), required=False, max_length=REASON_MAX_LENGTH,
        widget=ReasonInput,
        error_messages={
            "max_length": _("Keep the reason to %(limit_value)d characters or fewer (it has %(show_value)d). Nothing was changed."),
            "null_characters_not_allowed": NUL_IN_TEXT,
        },
    )
    # The period of access (all optional; blank: the course's default). Read by ``periods.period_request``.
    access_from = forms.CharField(
        label=_("Access from"), required=False, max_length=40, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The first day of access; blank for at once."),
    )
    access_until = forms.CharField(
        label=_("Access until"), required=False, max_length=40, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The last day of access (to the end of that day); blank for no end."),
    )
    duration_days = forms.CharField(
        label=_("…or days of access"), required=False, max_length=10,
        widget=forms.NumberInput(attrs={"min": 1, "max": MAX_DURATION_DAYS, "inputmode": "numeric"}),
        help_text=lazy_interpolated(gettext_noop("From the first day, or from enrolling (1 to %(max)s). Instead of an end date."), grouped=True, max=MAX_DURATION_DAYS),
    )
    action = forms.ChoiceField(
        choices=Action.choices, widget=forms.HiddenInput,
        error_messages={
            "required": _("Choose Enroll or Unenroll. Nothing was changed."),
            "invalid_choice": _("“%(value)s” is not something this form does: choose Enroll or Unenroll. Nothing was changed."),
        },
    )

    # Fields in page order, for focusing the first one in error.
    FOCUS_ORDER = ("identifiers", "file", "reason", *PERIOD_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["identifiers"].help_text = " ".join((str(self.fields["identifiers"].help_text), gettext(
            "Up to %(sync)s are handled at once; larger lists (up to %(max)s) run in the background."
        ) % {
            "sync": number_format(settings.ENROLLMENT_SYNC_LIMIT, force_grouping=True),
            "max": number_format(settings.ENROLLMENT_MAX_IDENTIFIERS, force_grouping=True),
        }))
        self.helper = FormHelper(self)
        self.helper.form_tag = False  # the page's <form> carries the action, the upload encoding and novalidate
        self.helper.disable_csrf = True  # and its token
        self.helper.form_show_errors = False  # the page's summary above the fields holds the form's own errors
        field_template = "enrollments/crispy/batch_field.html"
        self.helper.field_template = field_template
        # The action is the button pressed, not a field of its own: it stays out of the layout.
        self.helper.layout = Layout(
            "identifiers",
            "file",
            "auto_enroll",
            Field("email_students", wrapper_class="mb-3", template=field_template),
            "reason",
            # Folded away unless something is in it: most batches take the course's default.
            HTML(
                '<details class="mb-3 border rounded px-3 pt-2" id="access-period"{% if form.period_open %} open{% endif %}>'
                '<summary class="mb-2">' + gettext("Access period (optional; blank: the course's default)") + "</summary>"
            ),
            "access_from",
            "access_until",
            "duration_days",
            HTML("</details>"),
            *(
                # StrictButton writes its attributes sorted, which would put type between name
                # and value; this template writes type="submit" first, as the page always has.
                StrictButton(label, type=None, name="action", value=value, css_class=css_class,
                             template="enrollments/crispy/submit_button.html")
                for value, label, css_class in (
                    (Action.ENROLL, gettext("Enroll"), "btn-primary"),
                    (Action.UNENROLL, gettext("Unenroll"), "btn-outline-danger"),
                )
            ),
        )

    def clean_file(self):
        """The upload, size-checked only: it is read in the background by the
        batch's job (``batch_job_read_upload``), never in the request."""
        upload = self.cleaned_data.get("file")
        if not upload:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(gettext("The file is larger than %(mb)s MB.") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)})
        return upload

    def clean(self):
        data = super().clean()
        text = data.get("identifiers") or ""
        if not text.strip() and not data.get("file") and not self.errors:
            raise forms.ValidationError(gettext("Enter at least one username or email, or upload a file."))
        cap = settings.ENROLLMENT_MAX_IDENTIFIERS
        # The pasted ones; the job counts a file's with them once it has read it.
        count = count_tokens(text)
        if count > cap:
            raise forms.ValidationError(
                ngettext(
                    "That is %(count)s identifier; one batch may hold at most %(cap)s. Split the list; nothing was changed.",
                    "That is %(count)s identifiers; one batch may hold at most %(cap)s. Split the list; nothing was changed.",
                    count,
                ) % {"count": number_format(count, force_grouping=True), "cap": number_format(cap, force_grouping=True)}
            )
        data["token_count"] = count
        data["period"] = self._period(data)
        return data

    def _period(self, data) -> PeriodRequest:
        """The period asked for, checked by ``period_request``; an error is put on its field."""
        try:
            asked = period_request(**{name: data.get(name) or None for name in PERIOD_FIELDS})
        except ValidationError as exc:
            for name, errors in exc.error_dict.items():
                for error in errors:
                    self.add_error(name, error)
            return PeriodRequest()
        if data.get("action") == Action.UNENROLL and not asked.empty:
            name = next(name for name in PERIOD_FIELDS if data.get(name))
            self.add_error(name, gettext("A period only applies to enroll: leave it blank to unenroll. Nothing was changed."))
        return asked

    @property
    def period_open(self) -> bool:
        """Whether the Access period fold shows open: something is in it, or wrong with it."""
        return any(self[name].value() or name in self.errors for name in PERIOD_FIELDS)

    @property
    def focus_id(self) -> str:
        """The id of what should take the focus when the form comes back with
        errors: the first field in error, else the error summary."""
        for name in self.FOCUS_ORDER:
            if name in self.errors:
                return f"id_{name}"
        return "batch-errors" if self.errors else ""

    @property
    def summary_errors(self) -> list[str]:
        """Errors without a visible field of their own: the form's and the action's."""
        return [*self.non_field_errors(), *self.errors.get("action", [])]


class ChartRangeForm(forms.Form):
    """The period of the Course info chart, from the query string (?range=30d)."""

    RANGES = {"30d": (_("30 days"), 30), "1y": (_("1 year"), 365), "all": (pgettext_lazy("chart range", "All"), None)}
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


class UploadColumnForm(forms.Form):
    """Which column of a read upload holds the identifiers, and whether its first row is a heading."""

    column = forms.TypedChoiceField(
        label=_("Column of usernames or emails"), coerce=int,
        error_messages={"invalid_choice": _("Choose one of the file's columns. Nothing was changed.")},
    )
    heading = forms.BooleanField(label=_("The first row is a heading (not a person)"), required=False)

    def __init__(self, *args, columns: int, **kwargs):
        super().__init__(*args, **kwargs)
        column = self.fields["column"]
        assert isinstance(column, forms.TypedChoiceField)
        column.choices = [(n, gettext("Column %(n)s") % {"n": n}) for n in range(1, max(columns, 1) + 1)]
