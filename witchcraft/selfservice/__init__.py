"""The roof: the self-service pages that span domains. The user's overview (plan, quota,
usage, alerts and sessions on one page) and the data export (every domain's rows of the user).
The pages of one domain stay in that app's ``views``. Nothing below imports it."""
