"""The worker: claim jobs from Redis, originate them, follow their calls
(see ``core``). What other modules use is exported here."""

from .call import Call, OriginateResult
from .connect import CONNECT_FAILED_CAUSE
from .core import ESL_API_COMMANDS, WORKER_EVENT_FORMAT, WORKER_EVENTS, Worker, run
from .life import THROTTLE_CAUSE
from .nodes import MAX_UNANSWERED, NodeState
from .timings import Timings

__all__ = ["CONNECT_FAILED_CAUSE", "ESL_API_COMMANDS", "MAX_UNANSWERED", "THROTTLE_CAUSE", "WORKER_EVENTS",
           "WORKER_EVENT_FORMAT", "Call", "NodeState", "OriginateResult", "Timings", "Worker", "run"]
