"""The exceptions eslengine raises.

    EslEngineError
    ├── ConfigError                 a setting cannot be understood
    ├── ValidationError             a call request is refused; .field, .reason
    │   └── DoNotCall               a number it would ring is on a do-not-call list; .number, .list
    ├── QueueUnavailable            Redis cannot be reached or timed out
    ├── JobExists                   a job with this id was already accepted; .job_id
    ├── IdempotencyKeyUsed          an Idempotency-Key placed a call before; .job_id, .digest
    ├── EslError                    anything on an event-socket connection
    │   ├── EslConnectionError      cannot connect, or the socket died
    │   │   ├── EslAuthError        the switch refused the password
    │   │   └── EslNotSent          the command was not written: the switch never saw it
    │   │       └── LeaseLapsed     not written because the worker's lease had ended
    │   ├── EslTimeout              no reply within the command's deadline
    │   └── EslCommandError         the switch answered -ERR; .reply
    ├── OriginateFailed             an originate ended without a call; .cause
    ├── JobTakenOver                another worker holds the job now; .job_id
    └── WebhookError                a webhook delivery did not succeed
        ├── WebhookRefused          it never will: not allowed, an address refused, the receiver said 4xx
        └── WebhookFailed           it may later: DNS, connection, timeout, 5xx, 408, 429

Lower libraries' errors (redis, socket, http.client) are translated into these
where they enter eslengine, with ``raise ... from exc``.
"""

from __future__ import annotations


class EslEngineError(Exception):
    """Base of every error eslengine raises on purpose."""


class ConfigError(EslEngineError):
    """A configuration value is missing or malformed."""


class ValidationError(EslEngineError):
    """A call request (or one of its fields) is refused.

    ``field`` is a dotted path into the request (``"variables.campaign"``),
    ``reason`` a sentence a client can act on.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class DoNotCall(ValidationError):
    """A number the call would ring is on a do-not-call list (``dnc.py``);
    nothing was queued. ``reason`` is ``"do_not_call"``; ``list`` is
    ``"global"`` or ``"account"``."""

    def __init__(self, field: str, number: str, list_name: str) -> None:
        super().__init__(field, "do_not_call")
        self.number = number
        self.list = list_name


class QueueUnavailable(EslEngineError):
    """Redis could not be reached or did not answer in time."""


class JobExists(EslEngineError):
    """A job with this id was already accepted; nothing was queued."""

    def __init__(self, job_id: str) -> None:
        super().__init__("a call with id %s already exists" % job_id)
        self.job_id = job_id


class IdempotencyKeyUsed(EslEngineError):
    """The Idempotency-Key was used before, for the call ``job_id`` of a
    request whose digest is ``digest``; nothing was queued."""

    def __init__(self, job_id: str, digest: str) -> None:
        super().__init__("the Idempotency-Key was used for call %s" % job_id)
        self.job_id = job_id
        self.digest = digest


class EslError(EslEngineError):
    """Something went wrong on an event-socket connection."""


class EslConnectionError(EslError):
    """The connection could not be made, or it died while in use."""


class EslAuthError(EslConnectionError):
    """The switch refused the event-socket password."""


class EslNotSent(EslConnectionError):
    """The connection was down (or busy past the deadline) before the command
    was written: nothing reached the switch, so sending it again is safe."""


class LeaseLapsed(EslNotSent):
    """The command was not written because the worker's lease on its jobs
    had ended (its heartbeat not renewed in time): another worker may be
    taking the job over."""


class EslTimeout(EslError):
    """The switch did not reply within the command's deadline."""


class EslCommandError(EslError):
    """The switch answered a command with ``-ERR``."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command!r}: {reply}")
        self.command = command
        self.reply = reply


class OriginateFailed(EslEngineError):
    """An originate ended without establishing the A leg.

    ``cause`` is FreeSWITCH's hangup cause name (``USER_BUSY``, ``NO_ANSWER``,
    ``DESTINATION_OUT_OF_ORDER`` ...).
    """

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class JobTakenOver(EslEngineError):
    """Another worker took the job over while this one's heartbeat had
    lapsed: this one no longer places it, acknowledges it or writes its
    record."""

    def __init__(self, job_id: str) -> None:
        super().__init__("job %s: taken over by another worker" % job_id)
        self.job_id = job_id


class WebhookError(EslEngineError):
    """A webhook delivery did not succeed."""


class WebhookRefused(WebhookError):
    """The delivery will never succeed as it stands (the URL is no longer
    allowed, its host resolves to an address webhooks may not reach, or the
    receiver refused it with a 4xx): it is dropped, not retried."""


class WebhookFailed(WebhookError):
    """The delivery may succeed later (the name did not resolve, no
    connection, no answer in time, a 5xx, 408 or 429): it is retried."""
