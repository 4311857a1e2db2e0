from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("me/usage/", views.me_usage, name="me_usage"),
    path("me/usage.csv", views.me_usage_csv, name="me_usage_csv"),
    path("me/usage/requests/", views.me_usage_requests, name="me_usage_requests"),
]
