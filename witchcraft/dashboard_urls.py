"""``/dashboard/``: the staff dashboard. Each app contributes its pages (views in its
``dashboard.py``, registered in the navigation with ``witchcraft.staff.dashboard_page``)."""

app_name = "dashboard"

urlpatterns = []
