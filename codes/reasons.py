"""The reason a redemption writes into the enrollment audit trail: stored in
English as here, shown in the reader's language
(``enrollment_site.lib.stored_texts.shown``)."""

from django.utils.translation import gettext_noop

from enrollment_site.lib.stored_texts import stored_text

REDEEMED = stored_text(gettext_noop("Redeemed enrollment code %(code)s"))
