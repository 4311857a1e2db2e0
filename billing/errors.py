"""The refusals of billing's services and selectors: a refused quota call or plan change is a
``db_errors.Refused`` of this domain, with the messages its callers show. Its own module so that
the selectors and the services, which both raise them, need not import each other."""

from __future__ import annotations

from witchcraft.platform import db_errors

# How to answer a refusal (QuotaError.code) and the message for a caller who may not act.
INVALID = db_errors.INVALID
FORBIDDEN = db_errors.FORBIDDEN
NOT_ALLOWED = "You may not act for this user."


class QuotaError(db_errors.Refused):
    """A quota call was refused: ``code`` is ``invalid`` (answer 400) or ``forbidden`` (403)."""


def refusals():
    """The database refusals of this domain's functions, raised as this module's error."""
    return db_errors.refusals_as(QuotaError, forbidden=NOT_ALLOWED)


STAFF_ONLY = "Only staff may do this."


def staff_refusals():
    return db_errors.refusals_as(QuotaError, forbidden=STAFF_ONLY)


PLAN_NOT_YOURS = "You may not change this user's plan."
UPGRADES_UNAVAILABLE = (
    "Payments are not set up on this server: plans cannot be bought or upgraded here."
)
NO_CHECKOUT = "This plan cannot be bought online: contact us."
NOT_AN_UPGRADE = "That plan is not an upgrade of yours."


class PlanError(db_errors.Refused):
    """A plan change was refused: ``code`` is ``invalid`` (answer 400) or ``forbidden``."""


def plan_refusals():
    return db_errors.refusals_as(PlanError, forbidden=PLAN_NOT_YOURS)
