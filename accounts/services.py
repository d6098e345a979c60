from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def api_token_regenerate(*, user) -> tuple[Token, bool]:
    """Replace the user's API token with a new one; the old one stops working at once.

    Returns the new token and whether there was an old one to replace."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user), deleted > 0


@transaction.atomic
def user_name_update(*, user, first_name: str, last_name: str) -> None:
    """Set the person's name (validated by AccountNameForm); blank clears it."""
    user.first_name, user.last_name = first_name, last_name
    user.save(update_fields=["first_name", "last_name"])


@transaction.atomic
def user_preferences_update(*, user, language: str, time_zone: str) -> None:
    """Set the person's language (a code of settings.LANGUAGES, or blank: the
    browser's) and time zone (a zoneinfo name, or blank: the site's), as
    validated by AccountPreferencesForm or LanguageForm."""
    user.language, user.time_zone = language, time_zone
    user.save(update_fields=["language", "time_zone"])


@transaction.atomic
def user_language_update(*, user, language: str) -> None:
    """Set the person's language (a code of settings.LANGUAGES, validated by LanguageForm)."""
    user.language = language
    user.save(update_fields=["language"])
