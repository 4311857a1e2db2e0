from django.urls import path

from witchcraft.selfservice import views

app_name = "selfservice"

urlpatterns = [
    path("me/", views.me_overview, name="me"),
    path("me/export/", views.export_page, name="me_export"),
]
