from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("me/plan/", views.me_plan, name="me_plan"),
    path("me/plan/change/", views.me_plan_change, name="me_plan_change"),
    path("me/plan/resume/", views.me_plan_resume, name="me_plan_resume"),
    path("me/payments/", views.me_payments, name="me_payments"),
    path("billing/webhooks/<slug:provider>/", views.webhook, name="webhook"),
]
