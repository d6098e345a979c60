from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import get_adapter
from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import get_text_list
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .selectors import user_by_email, user_lookalike
from .time_zones import time_zone_choices
from .usernames import username_latin_lookalikes, username_mixes_scripts, username_normalize, username_scripts

User = get_user_model()
NAME_MAX = User._meta.get_field("first_name").max_length


def clean_new_username(username: str, *, exclude_pk: int | None = None, lookalikes: bool = True) -> str:
    """The username an account may newly take (sign-up, Django admin), NFKC-normalised
    (``ｌearner1`` is ``learner1``). Raises ValidationError, with a message for the
    person, if it mixes scripts (``lеarner1`` with a Cyrillic е), has a letter
    passing for a Latin one beside Latin letters (``tanaka〇``) or, unless
    ``lookalikes`` is False, looks like another account's (``accounts.usernames``)."""
    username = username_normalize(username)
    if username_mixes_scripts(username):
        scripts = get_text_list(sorted(username_scripts(username)), gettext("and"))
        raise ValidationError(
            gettext("“%(username)s” mixes letters of different alphabets (%(scripts)s), so it could pass for someone else's. "
                    "Use the letters of one alphabet, with digits and . @ + - _ as you like.") % {"username": username, "scripts": scripts},
            code="username_mixed_scripts",
        )
    if latin_lookalikes := username_latin_lookalikes(username):
        letters = " ".join(latin_lookalikes)
        raise ValidationError(
            gettext("“%(username)s” has Latin letters beside letters of another alphabet that look like Latin ones (%(letters)s), "
                    "so it could pass for someone else's. Use the Latin letters themselves.") % {"username": username, "letters": letters},
            code="username_mixed_scripts",
        )
    if lookalikes and user_lookalike(username, exclude_pk=exclude_pk) is not None:
        raise ValidationError(
            gettext("This username looks too much like an existing one (letters that look alike, such as 0 and O, or 1, I and l). "
                    "Choose another."),
            code="username_lookalike",
        )
    return username


def clean_new_email(email: str, *, exclude_pk: int | None = None) -> str:
    """Raise ValidationError if another account has this address in any spelling
    (case, or the domain in Unicode or punycode). For Django admin only: sign-up
    must not tell whether an address has an account (see SignupForm)."""
    if email and user_by_email(email, exclude_pk=exclude_pk) is not None:
        raise ValidationError(
            gettext("Another account has this email address already (perhaps spelled differently: in other capitals, "
                    "or with its domain in punycode, xn--…)."),
            code="email_taken",
        )
    return email


def _name_fields():
    return {
        "first_name": forms.CharField(label=_("First name (optional)"), max_length=NAME_MAX, required=False,
                                      widget=forms.TextInput(attrs={"autocomplete": "given-name"})),
        "last_name": forms.CharField(label=_("Last name (optional)"), max_length=NAME_MAX, required=False,
                                     widget=forms.TextInput(attrs={"autocomplete": "family-name"}),
                                     help_text=_("Emails and your course team address you by your name, else by your username.")),
    }


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form with the person's name; allauth's adapter stores
    ``first_name`` and ``last_name`` on the new user."""

    field_order = ["email", "username", "first_name", "last_name", "password1", "password2"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_name_fields())
        self.order_fields(self.field_order)

    def validate_unique_email(self, value):
        """allauth's check compares addresses ignoring case only; an account with
        the same email key (``idn@пример.рф`` for ``idn@xn--e1afmkfd.xn--p1ai``)
        has the address too. Such a sign-up is refused the way allauth refuses a
        taken address: with enumeration prevention (this site's setting) the
        page reads as for any sign-up, no account is made and the mailbox is
        told it has an account already."""
        value = super().validate_unique_email(value)
        if not self.account_already_exists and user_by_email(value) is not None:
            if not allauth_settings.PREVENT_ENUMERATION:
                raise get_adapter().validation_error("email_taken")
            self.account_already_exists = True
        return value

    def try_save(self, request):
        """allauth's save, where a sign-up that loses a race for its mailbox is
        answered like one for a taken address: two sign-ups for one mailbox at
        once (``idn@пример.рф`` and ``idn@xn--e1afmkfd.xn--p1ai``) both pass the
        checks above, and the database's unique email key refuses the second."""
        try:
            with transaction.atomic():
                return super().try_save(request)
        except IntegrityError:
            if self.account_already_exists or user_by_email(self.cleaned_data.get("email") or "") is None:
                raise
            self.account_already_exists = True
            return super().try_save(request)


class LoginForm(AllauthLoginForm):
    """allauth's login, where an email in any spelling (``idn@xn--e1afmkfd.xn--p1ai``
    for ``idn@пример.рф``) is handed on as the account has it, so that allauth
    finds the account and sees the address as the verified one."""

    def user_credentials(self) -> dict:
        credentials = super().user_credentials()
        if credentials.get("email"):
            credentials["email"] = get_adapter().clean_email(credentials["email"])
        return credentials


class AdminUserAddForm(AdminUserCreationForm):
    """Django admin's add form, with the sign-up rules on usernames and emails."""

    def clean_username(self):
        username = super().clean_username()
        return clean_new_username(username) if username else username

    def clean_email(self):
        return clean_new_email(self.cleaned_data.get("email", ""))


class AdminUserChangeForm(UserChangeForm):
    """Django admin's change form: a changed username or email follows the sign-up rules."""

    def clean_username(self):
        username = self.cleaned_data.get("username", "")
        if "username" not in self.changed_data:
            return username
        return clean_new_username(username, exclude_pk=self.instance.pk)

    def clean_email(self):
        email = self.cleaned_data.get("email", "")
        if "email" not in self.changed_data:
            return email
        return clean_new_email(email, exclude_pk=self.instance.pk)


class AccountNameForm(forms.Form):
    """The name on the account page; blank fields clear it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_name_fields())


def _language_choices():
    return [(code, name) for code, name in settings.LANGUAGES]


class LanguageForm(forms.Form):
    """The navigation bar's language picker: one of the shipped languages."""

    language = forms.ChoiceField(label=_("Language"), choices=_language_choices,
                                 error_messages={"invalid_choice": _("This site does not offer that language.")})


class AccountPreferencesForm(forms.Form):
    """The account page's language and time zone; blank is the default (the browser's
    language, the site's zone)."""

    language = forms.ChoiceField(
        label=_("Language"), required=False,
        error_messages={"invalid_choice": _("This site does not offer that language.")},
        help_text=_("Pages and emails are in this language."),
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"), required=False,
        error_messages={"invalid_choice": _("That is not a time zone this site knows; choose one from the list.")},
        help_text=_("Dates and times are shown in this zone."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("Your browser's language")), *_language_choices()]
        self.fields["time_zone"].choices = [
            ("", _("The site's time zone (%(zone)s)") % {"zone": settings.TIME_ZONE}), *time_zone_choices(),
        ]
