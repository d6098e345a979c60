"""The reasons organisation work (My Team, rules, imports) writes into the
enrollment audit trail: stored in English as they are here, shown in the
reader's language (``enrollment_site.lib.stored_texts.shown``)."""

from django.utils.translation import gettext_noop

from enrollment_site.lib.stored_texts import stored_text

MANAGER_ENROLLED = stored_text(gettext_noop("My Team: enrolled by manager %(manager)s"))
RULE = stored_text(gettext_noop("Rule: %(rule)s"))
# Quotes the reason of what made the person qualify (a rule's, say).
NO_LONGER_QUALIFIES = stored_text(gettext_noop("No longer qualifies: %(reason)s"))
IMPORT = stored_text(gettext_noop("Import %(filename)s"))
