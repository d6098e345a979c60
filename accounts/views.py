from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

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
