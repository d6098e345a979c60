from django.urls import path

from . import views

urlpatterns = [
    path("", views.account_page, name="account_page"),
    path("token/", views.api_token_create, name="api_token_create"),
    path("name/", views.account_name_update, name="account_name_update"),
    path("preferences/", views.account_preferences_update, name="account_preferences_update"),
]
