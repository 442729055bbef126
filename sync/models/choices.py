"""Choices shared by several tables. XeroStatus mirrors sync.mappers.stage.XERO_STATUSES (a test
keeps them equal) so the pure mappers need no Django import."""

from django.db import models


class XeroStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    SUBMITTED = "SUBMITTED", "Awaiting approval"
    AUTHORISED = "AUTHORISED", "Awaiting payment (approved)"
    PAID = "PAID", "Paid"
    VOIDED = "VOIDED", "Voided"
    DELETED = "DELETED", "Deleted"


class Source(models.TextChoices):
    BITRIX24 = "bitrix24", "Bitrix24"
    XERO = "xero", "Xero"


class Trigger(models.TextChoices):
    EVENT = "event", "Bitrix24 event"
    WEBHOOK = "webhook", "Xero webhook"
    BUTTON = "button", "User button"
    SWEEP = "sweep", "Scheduled sweep"
    SETUP = "setup", "Setup / import"


class Direction(models.TextChoices):
    PUSH = "push", "Bitrix24 → Xero"
    PULL = "pull", "Xero → Bitrix24"
    IMPORT = "import", "Import from Xero"
