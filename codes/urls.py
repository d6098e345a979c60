from django.urls import path

from . import views

urlpatterns = [
    path("courses/<course_key:course_key>/instructor/codes/", views.instructor_codes, name="instructor_codes"),
    path("redeem/", views.redeem, name="redeem_code"),
    path("courses/<course_key:course_key>/instructor/codes/export.csv", views.course_codes_export, name="course_codes_export"),
    path("courses/<course_key:course_key>/instructor/codes/<int:code_id>/deactivate/", views.course_code_deactivate, name="course_codes_deactivate"),
    path("courses/<course_key:course_key>/instructor/codes/<int:code_id>/redemptions/", views.course_code_redemptions, name="course_codes_redemptions"),
    path("courses/<course_key:course_key>/instructor/codes/batches/", views.course_batch_options, name="course_codes_batches"),
    path("groups/<int:group_id>/codes/", views.group_codes, name="group_codes_page"),
    path("groups/<int:group_id>/codes/batches/", views.group_batch_options, name="group_codes_batches"),
    path("groups/<int:group_id>/codes/export.csv", views.group_codes_export, name="group_codes_export"),
    path("groups/<int:group_id>/codes/<int:code_id>/deactivate/", views.group_code_deactivate, name="group_codes_deactivate"),
    path("groups/<int:group_id>/codes/<int:code_id>/redemptions/", views.group_code_redemptions, name="group_codes_redemptions"),
    path("codes/", views.all_codes, name="all_codes_page"),
    path("codes/batches/", views.all_batch_options, name="all_codes_batches"),
    path("codes/export.csv", views.all_codes_export, name="all_codes_export"),
    path("codes/<int:code_id>/deactivate/", views.all_code_deactivate, name="all_codes_deactivate"),
    path("codes/<int:code_id>/redemptions/", views.all_code_redemptions, name="all_codes_redemptions"),
]
