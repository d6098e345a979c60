from django import forms


class UndoForm(forms.Form):
    """Confirm an undo; emails are off unless asked for."""

    email_students = forms.BooleanField(
        required=False, initial=False, label="Email each person whose enrollment is restored, saying what was restored",
    )
