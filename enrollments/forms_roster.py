"""The forms of the course roster (the Learners tab): its query string, shared
by the page, its exports and the API, and the bulk-action confirmation."""

from __future__ import annotations

from datetime import date
from typing import cast

from django import forms
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from courses.models import Cohort, Course, Mode

from .models import Source
from .selectors.roster import DEFAULT_SORT, NO_COHORT, SORT_CHOICES, STATUS_LABELS, RosterQuery

SEARCH_MAX_LENGTH = 100
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)
CURSOR_MAX_LENGTH = 2000
MAX_SELECTED = 1000  # rows a page can select one by one (50 a page); "every matching row" has no limit

SORT_LABELS = {
    "created": pgettext_lazy("column", "Enrolled"), "updated": _("Last changed"), "username": _("Username"), "email": _("Email"), "mode": _("Mode"),
}


def _choice_error(name: str, choices) -> dict:
    allowed = ", ".join(str(value) for value, _ in choices if value != "")
    # The value is filled in by the field; %% keeps its placeholder through this first formatting.
    return {"invalid_choice": gettext("Unknown %(name)s “%%(value)s”: choose from %(allowed)s.") % {"name": name, "allowed": allowed}}


class RosterFilterForm(forms.Form):
    """The roster's search, filters, sort and cursor, as the query string
    carries them (``q``, ``status``, ``mode``, ``source``, ``cohort``,
    ``enrolled_from``, ``enrolled_to``, ``sort``, ``cursor``). Every value is
    checked; an invalid one is an error naming its field, never a guess."""

    q = forms.CharField(
        label=_("Search"), required=False, max_length=SEARCH_MAX_LENGTH, strip=True,
        help_text=_("Part of a username, email or full name; several words must all match."),
        error_messages={"max_length": _("Search for at most %(limit_value)d characters (you typed %(show_value)d).")},
    )
    status = forms.ChoiceField(label=_("Status"), required=False)
    mode = forms.ChoiceField(label=_("Mode"), required=False)
    source = forms.ChoiceField(label=_("Came in by"), required=False)
    cohort = forms.ChoiceField(label=_("Cohort"), required=False)
    enrolled_from = forms.DateField(
        label=_("Enrolled from"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )
    enrolled_to = forms.DateField(
        label=_("Enrolled to"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )
    sort = forms.ChoiceField(label=_("Sort"), required=False)
    cursor = forms.CharField(
        required=False, max_length=CURSOR_MAX_LENGTH, widget=forms.HiddenInput,
        error_messages={"max_length": _("Invalid cursor: use the Next and Previous links of a page.")},
    )

    FILTERS = ("q", "status", "mode", "source", "cohort", "enrolled_from", "enrolled_to")

    def __init__(self, data=None, *, course: Course, **kwargs):
        super().__init__(data, **kwargs)
        self.course = course
        self.cohorts = {str(c.pk): c for c in Cohort.objects.filter(course=course).order_by("name")}
        self._set_choices("status", "status", [("", gettext("Any status")), *STATUS_LABELS.items()])
        # Every mode the platform knows: a learner may still be in a mode the course no longer offers.
        self._set_choices("mode", "mode", [("", gettext("Any mode")), *Mode.choices])
        self._set_choices("source", "source", [("", gettext("Any way in")), *Source.choices])
        self._set_choices(
            "cohort", "cohort", [("", gettext("Any cohort")), (NO_COHORT, gettext("No cohort")), *((pk, c.name) for pk, c in self.cohorts.items())]
        )
        self._set_choices("sort", "sort", [("", gettext("Newest first")), *((key, key) for key in SORT_CHOICES)])

    def _set_choices(self, name: str, what: str, choices) -> None:
        field = cast(forms.ChoiceField, self.fields[name])
        field.choices = choices
        field.error_messages.update(_choice_error(what, choices))

    def _clean_day(self, name):
        value = self.cleaned_data[name]
        # Beyond these a day's bounds overflow the date and time types.
        if value is not None and not (FIRST_DAY <= value <= LAST_DAY):
            raise forms.ValidationError(gettext("Enter a date between %(first)s and %(last)s.") % {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()})
        return value

    def clean_enrolled_from(self):
        return self._clean_day("enrolled_from")

    def clean_enrolled_to(self):
        return self._clean_day("enrolled_to")

    def clean(self):
        data = super().clean()
        start, end = data.get("enrolled_from"), data.get("enrolled_to")
        if start and end and end < start:
            self.add_error("enrolled_to", gettext("The end of the range comes before its start."))
        return data

    def roster_query(self) -> RosterQuery:
        """The valid form as the selector's query (call after ``is_valid()``)."""
        data = self.cleaned_data
        cohort = data.get("cohort") or ""
        return RosterQuery(
            search=data.get("q") or "",
            status=data.get("status") or "",
            mode=data.get("mode") or "",
            source=data.get("source") or "",
            cohort=self.cohorts.get(cohort),
            no_cohort=cohort == NO_COHORT,
            enrolled_from=data.get("enrolled_from"),
            enrolled_to=data.get("enrolled_to"),
            sort=data.get("sort") or DEFAULT_SORT,
        )

    def filter_params(self) -> dict[str, str]:
        """The filters and the sort in force, as query-string parameters (for
        exports, the bulk action and the way back), without the cursor."""
        if not self.is_bound or not self.is_valid():
            return {}
        params = {name: str(self.data.get(name, "")).strip() for name in (*self.FILTERS, "sort")}
        return {k: v for k, v in params.items() if v}

    @property
    def first_error_id(self) -> str:
        for name in self.fields:
            if name in self.errors:
                return self[name].auto_id
        return ""


class BulkSelectionForm(forms.Form):
    """Which rows a bulk action is for: the ``ids`` ticked on the page
    (``scope=selected``) or every row matching the filter (``scope=all``)."""

    SCOPES = [("selected", _("The selected learners")), ("all", _("Every learner matching the filter"))]

    scope = forms.ChoiceField(choices=SCOPES, required=False)
    action = forms.ChoiceField(choices=[])

    def __init__(self, data=None, *, actions, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["action"].choices = list(actions)
        self.fields["action"].error_messages.update(_choice_error("action", self.fields["action"].choices))

    def clean(self):
        data = super().clean()
        data["scope"] = data.get("scope") or "selected"
        raw_ids = self.data.getlist("ids") if hasattr(self.data, "getlist") else self.data.get("ids", [])
        ids = []
        for raw in raw_ids:
            if not str(raw).isdigit() or len(str(raw)) > 18:
                raise forms.ValidationError(gettext("The selection is not valid: reload the page and select again."))
            ids.append(int(raw))
        if len(ids) > MAX_SELECTED:
            raise forms.ValidationError(
                gettext("Select at most %(max)s learners one by one, or choose every learner matching the filter.") % {"max": MAX_SELECTED}
            )
        data["ids"] = sorted(set(ids))
        if data["scope"] == "selected" and not data["ids"]:
            raise forms.ValidationError(gettext("Select at least one learner, or choose every learner matching the filter."))
        return data


def learners_phrase(count: int) -> str:
    return ngettext("%(n)s learner", "%(n)s learners", count) % {"n": number_format(count, force_grouping=True)}
