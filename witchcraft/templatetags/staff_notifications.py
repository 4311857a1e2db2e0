"""``{% staff_notifications as notify %}``: the staff notifications' channels and latest
notifications for the monitoring page (witchcraft.operations.notifications), read in the page's
own request (staff only: the page is)."""

from django import template

from witchcraft.operations.notifications import notifications_overview

register = template.Library()


@register.simple_tag
def staff_notifications() -> dict:
    return notifications_overview()
