from urllib.parse import urlsplit

from allauth.account.views import LoginView as AllauthLoginView
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .adapter import RETRY_AFTER_ATTR
from .forms import AccountNameForm, AccountPreferencesForm, LanguageForm
from .selectors import api_token_for
from .services import api_token_regenerate, user_language_update, user_name_update, user_preferences_update


def _account_page(request, *, name_form=None, preferences_form=None, status=200):
    user = request.user
    name_form = name_form or AccountNameForm(initial={"first_name": user.first_name, "last_name": user.last_name})
    preferences_form = preferences_form or AccountPreferencesForm(initial={"language": user.language, "time_zone": user.time_zone})
    context = {"token": api_token_for(user=user), "name_form": name_form, "preferences_form": preferences_form}
    return render(request, "accounts/account.html", context, status=status)


@login_required
def account_page(request):
    return _account_page(request)


@login_required
@require_POST
def account_name_update(request):
    form = AccountNameForm(request.POST)
    if not form.is_valid():
        return _account_page(request, name_form=form, status=400)
    user_name_update(user=request.user, **form.cleaned_data)
    messages.success(request, _("Your name was saved. You appear as %(name)s.") % {"name": request.user.display_name})
    return redirect("account_page")


@login_required
@require_POST
def account_preferences_update(request):
    form = AccountPreferencesForm(request.POST)
    if not form.is_valid():
        return _account_page(request, preferences_form=form, status=400)
    user_preferences_update(user=request.user, **form.cleaned_data)
    # The message is read on the next page, in the language just chosen.
    if form.cleaned_data["language"]:
        translation.activate(form.cleaned_data["language"])
    messages.success(request, _("Your language and time zone were saved."))
    return redirect("account_page")


def _language_cookie(response, language: str) -> None:
    # As Django's set_language: the choice outlives the session (and the logout).
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH, domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE, httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


def _on_this_site(request, url: str) -> bool:
    return url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())


@require_POST
def language_set(request):
    """The navigation bar's language picker: stored on the signed-in person's
    account and, for everyone, in the language cookie; then back to the page
    (``next``, this site's only)."""
    next_url = request.POST.get("next") or "/"
    if not _on_this_site(request, next_url):
        messages.error(request, _("The language was not changed: the page to return to is not on this site."))
        return redirect("home")
    # The picker posts the page's path alone; the Referer of that same page adds its query string (filters) back.
    referer = request.headers.get("referer", "")
    if referer and urlsplit(referer).path == next_url and _on_this_site(request, referer):
        next_url = referer
    form = LanguageForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The language was not changed: this site does not offer that language."))
        return redirect(next_url)
    language = form.cleaned_data["language"]
    if request.user.is_authenticated:
        user_language_update(user=request.user, language=language)
    translation.activate(language)
    name = translation.get_language_info(language)["name_local"]
    messages.success(request, _("The site is now in %(language)s.") % {"language": name})
    response = redirect(next_url)
    _language_cookie(response, language)
    return response


@login_required
@require_POST
def api_token_create(request):
    replaced = api_token_regenerate(user=request.user)[1]
    if replaced:
        messages.success(request, _("A new API token was created. The previous one no longer works."))
    else:
        messages.success(request, _("Your API token was created."))
    return redirect("account_page")


class LoginView(AllauthLoginView):
    """allauth's login (the admin's too), except that a login refused for too
    many failures is answered 429 with Retry-After, not 200: the page shows
    why, and scripts and proxies see the refusal for what it is."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(error.code == "too_many_login_attempts" for error in form.non_field_errors().as_data()):
            response.status_code = 429
            response["Retry-After"] = str(getattr(self.request, RETRY_AFTER_ATTR, None) or 60)
        return response
