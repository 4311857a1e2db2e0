from django.urls import path

from agents import views

app_name = "agents"

urlpatterns = [
    path("me/sessions/", views.me_sessions, name="me_sessions"),
    path("me/sessions/<int:session_id>/", views.me_session, name="me_session"),
    path(
        "me/sessions/<int:session_id>/messages/<int:message_id>/feedback/",
        views.me_feedback,
        name="me_feedback",
    ),
]
