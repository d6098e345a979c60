from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .selectors import api_token_for
from .services import api_token_regenerate


@login_required
def account_page(request):
    return render(request, "accounts/account.html", {"token": api_token_for(user=request.user)})


@login_required
@require_POST
def api_token_create(request):
    _, replaced = api_token_regenerate(user=request.user)
    if replaced:
        messages.success(request, "A new API token was created. The previous one no longer works.")
    else:
        messages.success(request, "Your API token was created.")
    return redirect("account_page")
