"""What an API key may be allowed to do: its client's scopes (a module of its own, so that the command line's help
names them without loading the service)."""

from __future__ import annotations

SCOPES = {
    "open311:write": "post Open311 service requests",
    "sharing:read": "read aggregates and anonymised orders of the data-sharing API",
    "sensors:write": "push sensor readings (monitoring)",
    "sms:write": "post the citizens' replies to text messages (an SMS relay: rating answers, 短信回访)",
    "admin": "read call statistics of every client",
}
