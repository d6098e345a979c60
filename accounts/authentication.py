"""API token authentication, with the token's user held in the cache.

Looking the token up is a round trip to the database on every API request,
as long as the cheapest page's own query: so a token that authenticated is
remembered for ``TOKEN_CACHE_SECONDS``, keyed by a digest of the token (the
token itself is never written to the cache). What would make it stop working
takes it out of the cache at once: deleting the token (revoking,
regenerating, deleting the user) and saving the user (deactivating, changing
``is_staff``), through the signals below. A change that bypasses ``save()``
(a bulk ``UPDATE``) reaches the API when the entry expires, and so does any
change in another process when ``CACHE_URL`` is local memory: use Redis with
several processes (README: Configuration)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

TOKEN_CACHE_SECONDS = 30


def _token_key(key: str) -> str:
    return "api-token:" + hashlib.sha256(key.encode()).hexdigest()


def _user_key(user_pk) -> str:
    # Which token entry is the user's (a user has at most one token), so that saving the user can drop it.
    return f"api-token-of:{user_pk}"


class BearerTokenAuthentication(TokenAuthentication):
    """DRF token authentication with the header ``Authorization: Bearer <token>``
    that integrators' existing clients send; a token that authenticated is
    served from the cache for ``TOKEN_CACHE_SECONDS`` (see the module)."""

    keyword = "Bearer"

    def authenticate_credentials(self, key):
        cache_key = _token_key(key)
        token = cache.get(cache_key)
        if token is None:
            # Unknown tokens and inactive users are refused here (401) and never cached.
            user, token = super().authenticate_credentials(key)
            cache.set_many({cache_key: token, _user_key(user.pk): cache_key}, timeout=TOKEN_CACHE_SECONDS)
        return token.user, token


def forget_token(key: str) -> None:
    """Drop a token's cache entry: the next request with it asks the database."""
    cache.delete(_token_key(key))


def forget_user(user_pk) -> None:
    """Drop the cache entry of ``user_pk``'s token, if any."""
    token_entry = cache.get(_user_key(user_pk))
    if token_entry is not None:
        cache.delete_many([token_entry, _user_key(user_pk)])


@receiver(post_delete, sender=Token, dispatch_uid="api_token_forget_deleted")
def _token_deleted(sender, instance, **kwargs):
    forget_token(instance.key)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="api_token_forget_saved_user")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="api_token_forget_deleted_user")
def _user_changed(sender, instance, **kwargs):
    forget_user(instance.pk)
