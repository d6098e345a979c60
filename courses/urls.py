from django.urls import path

from . import views

# The catalog, the course page, course creation and the dashboard's tabs are
# served by the apps above courses that they need (see README, Layout).
urlpatterns = [
    path("<course_key:course_key>/instructor/", views.instructor_dashboard, name="instructor_dashboard"),
]
