"""Settings for the enrollment manager, read from the environment.

With no environment at all the project runs on its embedded default: DEBUG on,
a SQLite file in the project, tasks run in-process, emails written to files
under ``var/mail`` and echoed to the console. Production sets ``DEBUG=0`` and
real values for ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``EMAIL_*``; ``manage.py check --deploy`` is then clean.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=True)

_INSECURE_DEV_KEY = "django-insecure-dev-only-key-do-not-use-in-production-0123456789"
SECRET_KEY = env("SECRET_KEY", default=_INSECURE_DEV_KEY)
if not DEBUG and SECRET_KEY == _INSECURE_DEV_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # third party
    "allauth",
    "allauth.account",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "crispy_forms",
    "django_filters",
    "crispy_bootstrap5",
    "django_htmx",
    "template_partials",
    "rules.apps.AutodiscoverRulesConfig",
    # ours
    "accounts",
    "courses",
    "enrollments",
    "organisations",
    "codes",
    "reports",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in person's language (over LocaleMiddleware's choice) and time zone.
    "accounts.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "enrollment_site.lib.error_handlers.AppErrorMiddleware",
]

ROOT_URLCONF = "enrollment_site.urls"
WSGI_APPLICATION = "enrollment_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A separate test database name lets several checkouts share one server.
    DATABASES["default"].setdefault("TEST", {})
    if env("TEST_DATABASE_NAME", default=""):
        DATABASES["default"]["TEST"]["NAME"] = env("TEST_DATABASE_NAME")
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default runs tasks in-process; a busy timeout keeps the
    # dev server and an in-process task from tripping over "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- cache (rate-limit counters must be shared between processes) ---------
CACHES = {
    "default": env.cache_url("CACHE_URL", default="locmemcache://enrollment"),
}

# --- auth -----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
# The adapter puts SITE_NAME (not the request's host) in allauth's emails and their subject prefix.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
ACCOUNT_RATE_LIMITS = {
    # allauth's own limit on failed logins per address; the limit per account
    # (LOGIN_FAILED_RATE_PER_ACCOUNT) is the adapter's, since allauth's "key"
    # is the login as typed and a username and its email would count apart.
    # Limits per address are loose on purpose: a school or an office behind one
    # NAT is one address for dozens of people, who must not lock each other out;
    # the tight limits are per account (allauth's defaults are 10/m failed and
    # 30/m logins, 20/m sign-ups and resets: a class of 30 would trip them).
    "login_failed": env("RATE_LIMIT_LOGIN_FAILED", default="100/5m/ip"),
    "login": "300/m/ip",
    "signup": "100/m/ip",
    "reset_password": "100/m/ip,5/m/key",
    "reset_password_from_key": "100/m/ip",
}
# Failed logins allowed per account, whether it was named by username or email, in any case.
LOGIN_FAILED_RATE_PER_ACCOUNT = env("LOGIN_FAILED_RATE_PER_ACCOUNT", default="5/5m")
ACCOUNT_FORMS = {
    "signup": "accounts.forms.SignupForm",  # adds the optional name; refuses an address taken in another spelling
    "login": "accounts.forms.LoginForm",  # an email in any spelling logs in its account
}

# --- internationalisation -------------------------------------------------
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
# The languages shipped in locale/ (compiled by `make run` and `make test`);
# README "Languages" says how to add one.
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    ("es", "Español"),
    ("de", "Deutsch"),
    ("nl", "Nederlands"),
    ("ar", "العربية"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- static and media files -----------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": env("DEFAULT_FILE_STORAGE", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Large pastes (100,000 identifiers at ~40 bytes) must fit; anything bigger is a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- email ----------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="enrollment_site.lib.mail.FileAndConsoleEmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Outbox delivery: SMTP connections used side by side (with enrollment_site.lib.mail.SMTPEmailBackend),
# and at most this many messages a second across them (0: no limit), for providers that set one.
EMAIL_CONNECTIONS = env.int("EMAIL_CONNECTIONS", default=4)
EMAIL_RATE_PER_SECOND = env.int("EMAIL_RATE_PER_SECOND", default=0)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Enrollment manager <noreply@localhost>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- Celery ---------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
# Without a broker the embedded default runs every task in-process.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# A running job beats every sixth of JOBS_STALE_AFTER from a thread of its own;
# one whose heartbeat is older than this lost its worker and is taken over (the
# sweep sends it again, a redelivered task claims it) and resumes where its last
# committed chunk ended. A queued job not started this long after it was sent is
# sent again. After JOBS_MAX_TAKEOVERS takeovers a job fails (enrollment_site.lib.jobs).
JOBS_STALE_AFTER = timedelta(seconds=env.int("JOBS_STALE_AFTER_SECONDS", default=120))
JOBS_MAX_TAKEOVERS = env.int("JOBS_MAX_TAKEOVERS", default=3)

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "enrollment_site.lib.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "enrollment_site.lib.error_handlers.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "enrollments_list": env("THROTTLE_ENROLLMENTS_LIST", default="600/min"),
        "bulk_enroll": env("THROTTLE_BULK_ENROLL", default="60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Enrollment manager API",
    "DESCRIPTION": "List enrollments and enroll or unenroll people in bulk.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two "status" fields (a job's, an enrollment's): each enum named by what it is.
    "ENUM_NAME_OVERRIDES": {
        "EnrollmentStatusEnum": "enrollments.periods.STATUSES",
        "JobStatusEnum": ["queued", "running", "succeeded", "failed"],
    },
}

# --- forms ----------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- security -------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Proxies of our own in front of the site (a TLS proxy, a load balancer): the
# limits per address then count the client each request came from, read from
# X-Forwarded-For, not the proxy (enrollment_site.lib.attempt_limits.client_address).
# Either the proxies' networks or how many there are; with neither the header is ignored.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
try:
    for _network in TRUSTED_PROXIES:
        ipaddress.ip_network(_network, strict=False)
except ValueError as _exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_exc}") from None
if TRUSTED_PROXIES and TRUSTED_PROXY_COUNT:
    raise ImproperlyConfigured("Set TRUSTED_PROXIES or TRUSTED_PROXY_COUNT, not both.")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=not DEBUG) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# A load balancer probes /healthz over plain http: a redirect to https would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)

# Content Security Policy (django-csp 4), enforced: no page has inline script or style, so
# everything comes from this origin (images may also be data: URIs, which Bootstrap's CSS uses).
# CSP_REPORT_ONLY=1 trials it instead (Report-Only), and then needs CSP_REPORT_URI: a policy
# that is only reported to nobody protects nothing and tells nobody anything.
_CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
_csp_report_uri = env("CSP_REPORT_URI", default="")
if _csp_report_uri:
    _CSP_DIRECTIVES["report-uri"] = [_csp_report_uri]
if env.bool("CSP_REPORT_ONLY", default=False):
    if not _csp_report_uri:
        raise ImproperlyConfigured("CSP_REPORT_ONLY=1 needs CSP_REPORT_URI: where browsers send the reports.")
    CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": _CSP_DIRECTIVES}
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP_DIRECTIVES}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- product limits ---------------------------------------------------------
# A paste, file or API call may carry at most this many identifiers.
ENROLLMENT_MAX_IDENTIFIERS = env.int("ENROLLMENT_MAX_IDENTIFIERS", default=100_000)
# Identifiers a queued batch or API bulk job commits at a time: the most a
# worker killed mid-job has to do again when the job is taken over.
ENROLLMENT_JOB_CHUNK = env.int("ENROLLMENT_JOB_CHUNK", default=5_000)
# Above this many identifiers, batch enrollment runs as a background job.
ENROLLMENT_SYNC_LIMIT = env.int("ENROLLMENT_SYNC_LIMIT", default=10_000)
# How long a manual operation may be undone (days since it was made).
UNDO_DAYS = env.int("UNDO_DAYS", default=30)
# Membership previews and read uploads nobody confirmed are removed after this many hours (enrollments.tasks.sweep_previews).
PREVIEW_KEEP_HOURS = env.int("PREVIEW_KEEP_HOURS", default=24)
# An invitation is emailed again (Resend on the invitations table) at most once in this many minutes.
INVITATION_RESEND_MINUTES = env.int("INVITATION_RESEND_MINUTES", default=10)

# The site's name in emails (greetings, subject prefix, sender's signature).
SITE_NAME = env("SITE_NAME", default="Enrollment manager")
# Absolute address of the site, for links in emails sent by workers (no request there).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
if env("SITE_URL", default=""):
    # allauth's links (activation, password reset) use the scheme of the site as set,
    # so a plain-http deployment (docker compose on localhost) gets working links.
    ACCOUNT_DEFAULT_HTTP_PROTOCOL = SITE_URL.split("://", 1)[0]
# Failed code redemptions allowed per user and per address (rates in the django-ratelimit notation, e.g. 10/10m).
CODE_REDEEM_RATE_PER_USER = env("CODE_REDEEM_RATE_PER_USER", default="10/10m")
# Per address much looser than per user: one address may be a whole school behind NAT.
CODE_REDEEM_RATE_PER_IP = env("CODE_REDEEM_RATE_PER_IP", default="200/10m")
# Wrong self-enrollment keys allowed per user and per address (same notation).
ENROLLMENT_KEY_RATE_PER_USER = env("ENROLLMENT_KEY_RATE_PER_USER", default="10/10m")
ENROLLMENT_KEY_RATE_PER_IP = env("ENROLLMENT_KEY_RATE_PER_IP", default="200/10m")
# Organisation import caps, and above how many changes assignments and rules run in the background.
ORGANISATION_IMPORT_MAX_BYTES = env.int("ORGANISATION_IMPORT_MAX_BYTES", default=10 * 1024 * 1024)
ORGANISATION_IMPORT_MAX_ROWS = env.int("ORGANISATION_IMPORT_MAX_ROWS", default=50_000)
ORGANISATION_SYNC_LIMIT = env.int("ORGANISATION_SYNC_LIMIT", default=5_000)
# Uploaded files are read by a job in a child process with these limits (CPU seconds,
# clock seconds, address space in MB); a file that needs more is refused with the limit named.
UPLOAD_PARSE_TIME_LIMIT = env.int("UPLOAD_PARSE_TIME_LIMIT", default=30)
UPLOAD_PARSE_CLOCK_LIMIT = env.int("UPLOAD_PARSE_CLOCK_LIMIT", default=120)
UPLOAD_PARSE_MEMORY_LIMIT_MB = env.int("UPLOAD_PARSE_MEMORY_LIMIT_MB", default=512)
