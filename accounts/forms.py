from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms
from django.contrib.auth import get_user_model

User = get_user_model()
NAME_MAX = User._meta.get_field("first_name").max_length


def _name_fields():
    return {
        "first_name": forms.CharField(label="First name (optional)", max_length=NAME_MAX, required=False,
                                      widget=forms.TextInput(attrs={"autocomplete": "given-name"})),
        "last_name": forms.CharField(label="Last name (optional)", max_length=NAME_MAX, required=False,
                                     widget=forms.TextInput(attrs={"autocomplete": "family-name"}),
                                     help_text="Emails and your course team address you by your name, else by your username."),
    }


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form with the person's name; allauth's adapter stores
    ``first_name`` and ``last_name`` on the new user."""

    field_order = ["email", "username", "first_name", "last_name", "password1", "password2"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_name_fields())
        self.order_fields(self.field_order)


class AccountNameForm(forms.Form):
    """The name on the account page; blank fields clear it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_name_fields())
