"""How a command ended: one vocabulary for the applier's result, the log and the metrics."""

from __future__ import annotations

from enum import StrEnum


class Disposition(StrEnum):
    """How a command ended; the value is the ``outcome`` of its log line and metric label."""

    applied = "applied"
    refused = "refused"  # a domain error, stored as the reply
    duplicate = "duplicate"  # answered from the store
    read = "read"
    denied = "denied"  # not authorised for the model; nothing stored
    # Ended before the applier: answered (when asked) and dead-lettered, or turned away.
    invalid = "invalid"  # undecodable or not a valid command
    unauthorized = "unauthorized"  # no user_id and anonymous commands not allowed
    rate_limited = "rate_limited"  # over the sender's share; answered, not stored
    internal = "internal"  # an unexpected error; answered with its reference
    abandoned = "abandoned"  # the daemon stopped first; the broker redelivers it
    error = "error"  # the reply, ack or dead-lettering failed; the broker redelivers it
