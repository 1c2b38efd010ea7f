"""What happens to a call leg, decided by its destination number.

A :class:`Scenario` is an ordered list of :class:`Rule`; the first rule whose
regex matches the destination (``re.search``) decides the leg's
:class:`Outcome`. When no rule matches, the built-in defaults apply:

=============  =============================================================
destination    outcome
=============  =============================================================
``...486``     busy: hangs up ``USER_BUSY`` at once
``...408``     no answer: ``CHANNEL_PROGRESS``, then ``NO_ANSWER`` when the
               originate timeout expires
``...404``     fail ``UNALLOCATED_NUMBER``
``...503``     fail ``NORMAL_TEMPORARY_FAILURE``
anything else  rings ``ring_time``, answers, stays up (or ``talk_time``)
=============  =============================================================

A scenario file is JSON::

    {"rules": [{"match": "^1001$", "outcome": "answer_then_hangup", "talk": 2},
               {"match": "1183$", "outcome": "early_media", "after": 5}]}

``outcome`` is one of ``answer``, ``busy``, ``no_answer``, ``fail``,
``answer_then_hangup``, ``slow_answer``, ``early_media``; ``cause`` overrides
the hangup cause, ``after`` the seconds until the outcome happens (ringing
time, or time to the failure), ``talk`` the seconds an answered leg stays up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

OUTCOMES = frozenset(
    {"answer", "busy", "no_answer", "fail", "answer_then_hangup", "slow_answer", "early_media"}
)

_DEFAULT_CAUSE = {
    "busy": "USER_BUSY",
    "no_answer": "NO_ANSWER",
    "fail": "NORMAL_TEMPORARY_FAILURE",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """The fate of one leg.

    ``after`` is None when the switch's ``ring_time`` applies (answering
    kinds) or 0 (failing kinds); ``talk`` None means the switch's
    ``talk_time`` (None there means: up until hung up).
    """

    kind: str
    cause: str = ""
    after: float | None = None
    talk: float | None = None

    @property
    def answers(self) -> bool:
        return self.kind in ("answer", "answer_then_hangup", "slow_answer", "early_media")


@dataclass(frozen=True, slots=True)
class Rule:
    match: re.Pattern[str]
    outcome: Outcome

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        try:
            pattern = re.compile(str(data["match"]))
        except (KeyError, re.error) as exc:
            raise ConfigError("scenario rule needs a valid 'match' regex: %r" % (data,)) from exc
        kind = str(data.get("outcome", "answer"))
        if kind not in OUTCOMES:
            raise ConfigError("scenario outcome %r is not one of %s" % (kind, sorted(OUTCOMES)))
        cause = str(data.get("cause") or _DEFAULT_CAUSE.get(kind, "NORMAL_CLEARING"))
        after = data.get("after")
        talk = data.get("talk")
        try:
            return cls(
                pattern,
                Outcome(
                    kind,
                    cause.upper(),
                    None if after is None else float(after),
                    None if talk is None else float(talk),
                ),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError("scenario 'after'/'talk' must be numbers: %r" % (data,)) from exc


_DEFAULT_RULES = (
    Rule(re.compile("486$"), Outcome("busy", "USER_BUSY")),
    Rule(re.compile("408$"), Outcome("no_answer", "NO_ANSWER")),
    Rule(re.compile("404$"), Outcome("fail", "UNALLOCATED_NUMBER")),
    Rule(re.compile("503$"), Outcome("fail", "NORMAL_TEMPORARY_FAILURE")),
)
_ANSWER = Outcome("answer")


@dataclass(frozen=True, slots=True)
class Scenario:
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def outcome(self, destination: str) -> Outcome:
        for rule in self.rules:
            if rule.match.search(destination):
                return rule.outcome
        for rule in _DEFAULT_RULES:
            if rule.match.search(destination):
                return rule.outcome
        return _ANSWER

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            raise ConfigError("scenario 'rules' must be a list")
        return cls(tuple(Rule.from_dict(r) for r in rules))

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError("cannot read scenario file %s: %s" % (path, exc)) from exc
        if not isinstance(data, dict):
            raise ConfigError("scenario file %s must hold a JSON object" % path)
        return cls.from_dict(data)
