from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import LoginView, language_set
from organisations.urls import course_urlpatterns as course_import_urlpatterns
from organisations.urls import team_urlpatterns

from . import views

# The admin logs in through allauth, so its rate limits cover the admin too.
admin.autodiscover()
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # wrapped on purpose
admin.site.site_header = _("Enrollment manager administration")
handler400 = "enrollment_site.views.bad_request"

urlpatterns = [
    # First: an API call is resolved before the pages' seventy-odd patterns are tried, on every request.
    path("api/", include("enrollments.api.urls")),
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/profile/", include("accounts.urls")),
    # The language picker of the navigation bar (Django's set_language, storing the choice on the account too).
    path("i18n/setlang/", language_set, name="set_language"),
    # Ahead of allauth's own: the same login, answering 429 when it is refused for too many failures.
    path("accounts/login/", LoginView.as_view(), name="account_login"),
    path("accounts/", include("allauth.urls")),
    path("courses/", include("courses.urls")),
    path("", include("enrollments.urls")),
    path("", include("codes.urls")),
    path("", include("reports.urls")),
    path("groups/", include("organisations.urls")),
    path("organisation/", include("organisations.urls_org")),
    path("team/", include(team_urlpatterns)),
    path("courses/<course_key:course_key>/instructor/import/", include(course_import_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
]
