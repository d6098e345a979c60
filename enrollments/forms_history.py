"""Forms of the learner's story, the audit log and the invitations table.

They validate query strings and confirmations; a value they refuse gets a
message naming the field, and the page shows nothing filtered by it (Django's
fields refuse NUL characters themselves)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.selectors import user_by_identifier

from .models import Source, State
from .selectors.audit_log import AuditFilter
from .selectors.invitations import MAX_SEARCH_LENGTH

REASON_MAX_LENGTH = 500
WHO_MAX_LENGTH = 320


class StoryForm(forms.Form):
    """Check enrollment status: anyone, by username or email."""

    who = forms.CharField(
        label=_("Username or email"), max_length=WHO_MAX_LENGTH, strip=True,
        error_messages={"max_length": _("A username or email has at most %(limit_value)d characters (this has %(show_value)d).")},
    )


class AuditFilterForm(forms.Form):
    """The audit log's filters, from the query string."""

    actor = forms.CharField(label=_("Changed by"), required=False, max_length=WHO_MAX_LENGTH, help_text=_("Username or email"))
    source = forms.ChoiceField(label=_("Source"), required=False, choices=[("", _("Any source")), *Source.choices])
    action = forms.ChoiceField(label=_("Change to"), required=False, choices=[("", _("Any change")), *State.choices])
    since = forms.DateField(label=pgettext_lazy("date range", "From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=pgettext_lazy("date range", "To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    operation = forms.UUIDField(
        label=_("Operation"), required=False, error_messages={"invalid": _("Not an operation id: use an Operation link of the log.")}
    )

    def clean_actor(self):
        text = self.cleaned_data["actor"]
        if not text:
            return None
        user = user_by_identifier(text, active_only=False)
        if user is None:
            raise forms.ValidationError(gettext("No account with the username or email %(who)s.") % {"who": text})
        return user

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", gettext("The end of the range is before its start."))
        return data

    def audit_filter(self) -> AuditFilter:
        data = self.cleaned_data
        actor = data.get("actor")
        return AuditFilter(
            actor_id=actor.pk if actor is not None else None, source=data.get("source") or "", action=data.get("action") or "",
            since=data.get("since"), until=data.get("until"), operation_id=data.get("operation"),
        )

    @property
    def is_filtered(self) -> bool:
        return any(self.data.get(name) for name in self.fields)


class InvitationSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search invitations"), required=False, max_length=MAX_SEARCH_LENGTH, strip=True,
        error_messages={"max_length": _("Search for at most %(limit_value)d characters (this has %(show_value)d).")},
    )


class InvitationActionForm(forms.Form):
    """Resend or revoke invitations: the selected ones (``allowance``), or every
    one matching the search (``all`` with ``q``)."""

    ACTIONS = {"resend": _("Resend the invitation email"), "revoke": _("Revoke")}

    action = forms.ChoiceField(choices=list(ACTIONS.items()), error_messages={"invalid_choice": _("Choose Resend or Revoke.")})
    allowance = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    all = forms.BooleanField(required=False)
    # With ``all``: how many invitations the confirmation page named, so that a
    # revoke over a search that has matched more since asks again.
    expected = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    q = forms.CharField(required=False, max_length=MAX_SEARCH_LENGTH, strip=True)
    reason = forms.CharField(
        label=_("Reason (optional, recorded in the audit log and quoted in the email)"), required=False, max_length=REASON_MAX_LENGTH,
        widget=forms.TextInput,
    )
    email_students = forms.BooleanField(label=_("Email each person that their invitation was withdrawn"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any whole number is accepted here; which ids are this course's open
        # invitations is the service's to decide (the rest change nothing).
        self.fields["allowance"].valid_value = lambda value: str(value).isdigit() and len(str(value)) < 19

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("all") and not data.get("allowance"):
            raise forms.ValidationError(gettext("Select at least one invitation, or choose every invitation matching the search."))
        return data
