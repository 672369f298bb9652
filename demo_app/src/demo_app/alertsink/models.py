"""The payloads the alert sink accepts, bounded: what Alertmanager's webhook and Slack
notifiers send. Every string and collection has a ceiling, so a valid payload cannot
be arbitrarily large after parsing either."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints, model_validator

from ..errors import JsonInt

Short = Annotated[str, StringConstraints(max_length=1024)]
Text = Annotated[str, StringConstraints(max_length=64 * 1024)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Labels = Annotated[dict[LabelName, Text], Field(max_length=64)]
Status = Literal["firing", "resolved"]


def _rfc3339_string(value: object) -> object:
    # pydantic would take a number as a Unix time; the payload's times are strings.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339_string)]
MAX_ALERTS = 1000  # per notification


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Status
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: Timestamp
    endsAt: Timestamp | None = None
    generatorURL: Text = ""
    fingerprint: Short = ""


class Notification(BaseModel):
    """https://prometheus.io/docs/alerting/latest/configuration/#webhook_config"""

    model_config = ConfigDict(extra="allow")
    version: Literal["4"]
    groupKey: Text
    truncatedAlerts: JsonInt = Field(default=0, ge=0, le=2**31)
    status: Status
    receiver: Short
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: Text = ""
    # Alertmanager's webhook_config max_alerts caps this far lower (alertmanager.yml) and
    # counts the rest in truncatedAlerts.
    alerts: list[Alert] = Field(min_length=1, max_length=MAX_ALERTS)


# ---- Slack incoming webhooks (https://api.slack.com/messaging/webhooks) --------------
# Alertmanager's slack_config posts `attachments` (the message's title, text, color,
# fields); `blocks` (Block Kit) is what other senders use. Both are kept as received.

class SlackField(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: Text = ""
    value: Text = ""
    short: StrictBool | None = None


class SlackAttachment(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: Text = ""
    title_link: Text = ""
    pretext: Text = ""
    text: Text = ""
    fallback: Text = ""
    color: Short = ""
    footer: Text = ""
    fields: list[SlackField] = Field(default_factory=list, max_length=100)


class SlackMessage(BaseModel):
    # Slack refuses a message with nothing to show (no_text); the schema says so too.
    model_config = ConfigDict(extra="allow", json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"minLength": 1}}},
        {"required": ["blocks"], "properties": {"blocks": {"minItems": 1}}},
        {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}},
    ]})
    text: Text = ""
    channel: Short = ""
    username: Short = ""
    blocks: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    attachments: list[SlackAttachment] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _has_content(self) -> "SlackMessage":
        if not (self.text or self.blocks or self.attachments):
            raise ValueError("a Slack message needs text, blocks or attachments")
        return self
