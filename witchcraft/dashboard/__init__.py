"""The roof: the staff dashboard's frame. The URL map of ``/dashboard/`` and the pages that
span domains (one user's 360° page, the archive search). Each domain's own dashboard pages stay
in that app's ``dashboard.py``; this package composes them. Nothing below imports it."""
