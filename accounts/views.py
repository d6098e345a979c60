from allauth.account.views import LoginView as AllauthLoginView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .adapter import RETRY_AFTER_ATTR
from .forms import AccountNameForm
from .selectors import api_token_for
from .services import api_token_regenerate, user_name_update


def _account_page(request, *, name_form=None, status=200):
    user = request.user
    name_form = name_form or AccountNameForm(initial={"first_name": user.first_name, "last_name": user.last_name})
    return render(request, "accounts/account.html", {"token": api_token_for(user=user), "name_form": name_form}, status=status)


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
    messages.success(request, f"Your name was saved. You appear as {request.user.display_name}.")
    return redirect("account_page")


@login_required
@require_POST
def api_token_create(request):
    _, replaced = api_token_regenerate(user=request.user)
    if replaced:
        messages.success(request, "A new API token was created. The previous one no longer works.")
    else:
        messages.success(request, "Your API token was created.")
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
