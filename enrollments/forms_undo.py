from django import forms
from django.utils.translation import gettext_lazy as _


class UndoForm(forms.Form):
    """Confirm an undo; emails are off unless asked for."""

    email_students = forms.BooleanField(
        required=False, initial=False, label=_("Email each person whose enrollment is restored, saying what was restored"),
    )
