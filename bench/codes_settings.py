"""Settings for the codes benchmark's live server: the project's own, with the
redemption rate limits lifted so that many clients from one address are not
refused (the limiter is tested elsewhere; here the row lock is measured)."""

from enrollment_site.settings import *  # noqa: F403

CODE_REDEEM_RATE_PER_USER = "1000000/10m"
CODE_REDEEM_RATE_PER_IP = "1000000/10m"

# 400 answers ("used up") are the expected outcome for most attempts here.
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405
LOGGING["loggers"]["codes.views"] = {"level": "WARNING"}  # noqa: F405
