"""The history widget's filter language: words match message, name, tags, version and notebook;
`key OP value` compares a metric (or else a param), e.g. `acc>0.9 lr=0.01 best`. All terms must hold."""

from __future__ import annotations

import operator
import re

_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq, "=": operator.eq,
        ">": operator.gt, "<": operator.lt}
_TERM = re.compile(r"^([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|=|>|<)\s*(.+)$")


class Query:
    """A parsed filter; `Query(text).match(version)`."""

    def __init__(self, text: str = ""):
        self.text = text or ""
        self.words: list[str] = []
        self.compares: list[tuple] = []
        for raw in _split(self.text):
            m = _TERM.match(raw)
            if m:
                key, op, value = m.groups()
                self.compares.append((key, _OPS[op], _number(value)))
            else:
                self.words.append(raw.lower())

    def __bool__(self) -> bool:
        return bool(self.words or self.compares)

    def match(self, v) -> bool:
        if self.words:
            hay = " ".join([v.label, v.name, v.message, v.notebook, *v.tags]).lower()
            if not all(w in hay for w in self.words):
                return False
        for key, op, value in self.compares:
            have = v.metrics.get(key, v.params.get(key, _MISSING))
            if have is _MISSING:
                return False
            try:
                if not op(have, value):
                    return False
            except TypeError:  # a string param against a number: compare as text
                if not op(str(have), str(value)):
                    return False
        return True


_MISSING = object()


def _split(text: str) -> list[str]:
    """Whitespace-separated terms; `acc > 0.9` (spaces around the operator) is one term."""
    text = re.sub(r"\s*(>=|<=|!=|==|=|>|<)\s*", r"\1", text.strip())
    return [t.strip("\"'") for t in text.split() if t.strip("\"'")]


def _number(s: str):
    s = s.strip("\"'")
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s
