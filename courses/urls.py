from django.urls import path

from . import views

urlpatterns = [
    path("", views.catalog, name="course_catalog"),
    path("new/", views.course_new, name="course_new"),
    path("<course_key:course_key>/", views.course_detail, name="course_detail"),
    path("<course_key:course_key>/instructor/", views.instructor_dashboard, name="instructor_dashboard"),
    path("<course_key:course_key>/instructor/info/", views.instructor_info, name="instructor_info"),
    path("<course_key:course_key>/instructor/membership/", views.instructor_membership, name="instructor_membership"),
    path("<course_key:course_key>/instructor/data/", views.instructor_data, name="instructor_data"),
    path("<course_key:course_key>/instructor/codes/", views.instructor_codes, name="instructor_codes"),
    path("<course_key:course_key>/instructor/team/add/", views.team_add, name="course_team_add"),
    path("<course_key:course_key>/instructor/team/<int:user_id>/remove/", views.team_remove, name="course_team_remove"),
]
