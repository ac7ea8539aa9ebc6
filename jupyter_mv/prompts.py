"""Prompt templates and generation settings found in a notebook's namespace.

A prompt is recorded in its variable's summary as ``{"kind", "placeholders", "text"}`` (the value itself
is stored unchanged by its codec: a str stays a str); the diff shows a line diff of two versions' texts and
the placeholders added and removed. Generation settings (temperature, top_p, ...) of a transformers
``GenerationConfig`` or of a dict holding those names become version params.

What counts as a prompt (strings need more than braces, so a JSON document, a format spec like
``"{:.2f}"``, a path template, a SQL statement, LaTeX (``\\frac{a}{b}``) or a short log line is not one):

- a ``str`` with named placeholders, ``{name}`` (``str.format``, LangChain f-string) or ``{{ name }}``
  (Jinja2, Mustache), holding at least ``MIN_WORDS`` words of prose outside them (``MIN_CUE_WORDS`` when a
  word typical of instructions, such as *answer* or *context*, is among them), or any number when the
  variable's name says it is one (``*prompt*``, ``*template*``, ``*system*``, ``*instruction*``); a
  ``*prompt*``/``*system*``/``*instruction*`` string of three words or more is one even without placeholders.
  Text that formats values for display (a field with a format spec or a conversion, ``{loss:.4f}``,
  ``{x!r}``: a log or report line, an f-string that lost its ``f``) counts only when the name says so;
  a SQL statement (``SELECT ... FROM ... WHERE id = {id}``) never does;
- a chat message list ``[{"role": ..., "content": ...}, ...]`` (OpenAI / transformers chat templates) or
  LangChain-style ``[("system", "..."), ("human", "{question}")]``;
- ``string.Template``; LangChain ``PromptTemplate`` / ``ChatPromptTemplate`` (when langchain_core is
  imported); a Jinja2 ``Template`` whose loader still gives its source.
"""

from __future__ import annotations

import difflib
import json
import re
import string
import sys

MAX_TEXT = 100_000  # characters of a prompt's text kept in the summary; longer ones are cut and say so
MIN_WORDS = 8
MIN_CUE_WORDS = 4
_NAME_HINT = re.compile(r"prompt|template|tmpl|system|instruction|persona|few_?shot", re.I)
_PLAIN_PROMPT_HINT = re.compile(r"prompt|system|instruction|persona", re.I)
_CUES = {"you", "your", "answer", "question", "questions", "context", "respond", "reply", "assistant", "user",
         "summarize", "summarise", "translate", "explain", "classify", "following", "instructions", "given"}
_IDENT = re.compile(r"[A-Za-z_]\w*\Z")
_DOUBLE = re.compile(r"\{\{\s*([#^/]?)\s*([A-Za-z_]\w*(?:\.\w+)*)\s*(?:\|[^{}]*)?\}\}")
_JINJA_BLOCK = re.compile(r"\{%-?\s*\w+")
# LaTeX: a command's argument (\mathrm{loss}, \frac{a}{b}) or braces inside $...$ math (x_{t}) are markup
_LATEX = re.compile(r"\\[A-Za-z]+\*?\{|\$[^$\n]*\{[^$\n]*\$")
# the format-spec mini-language (https://docs.python.org/3/library/string.html#formatspec), without nesting
_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?\d*[,_]?(?:\.\d+)?[bcdeEfFgGnosxX%]?\Z")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[.,:;!?)\"']*\Z")
# a SQL statement: its verb (after comments), then a clause keyword; lower-case SQL also needs an operator,
# so prose that starts "Select the answer from ..." stays prose
_SQL_VERB = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(select|insert|update|delete|with|create|alter|drop|"
                       r"merge|upsert|replace|explain|pragma)\b", re.I | re.S)
_SQL_CLAUSE = re.compile(r"\b(from|into|set|table|view|index|where|values|join|as)\b", re.I)
_SQL_CODE = re.compile(r"[=*;<>]|\b(group|order)\s+by\b|\blimit\s+\{?\w", re.I)
ROLES = {"system", "user", "assistant", "human", "ai", "tool", "developer", "function", "model", "placeholder"}
GENERATION_KEYS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed", "do_sample",
                   "num_beams")
MODEL_ID_KEYS = ("model_id", "model_name_or_path", "model_name", "model")
# a dict is a set of generation settings when it holds one of these (seed alone is any RNG's seed)
_GENERATION_MARKERS = {"temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty"}


# -- placeholders in text --------------------------------------------------------------------------
def placeholders(text: str) -> tuple[str, list[str]] | None:
    """(style, names in order of first use) of the named placeholders in `text`, or None when it
    has none or its braces are not a template's (positional or empty fields, a format spec that is not
    one, unbalanced braces). style: "jinja" for ``{{ name }}`` / ``{% %}`` (Jinja2, Mustache),
    "format" for ``{name}`` (``str.format``)."""
    if "{{" in text or "{%" in text:
        names = _double_names(text)
        if names or _JINJA_BLOCK.search(text):
            return "jinja", names
        # no {{ name }}: "{{" may be str.format's escaped brace ("Reply as {{\"a\": 1}} to {question}")
    if "{" not in text or _LATEX.search(text):
        return None
    names = []
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:  # unbalanced braces: not a str.format template
        return None
    for _, field, spec, conv in fields:
        if field is None:
            continue
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not _IDENT.match(root) or (spec and not _SPEC.match(spec)):
            return None  # "{0}", "{}", "{color: red}" (CSS), "{ x }"
        if root not in names:
            names.append(root)
    return ("format", names) if names else None


def _double_names(text: str) -> list[str]:
    """Names in ``{{ }}`` placeholders: Jinja2's own parser when it is installed and accepts the text
    (it knows loops and filters: a loop variable is not a placeholder), else the plain pattern."""
    if len(text) <= MAX_TEXT and ("jinja2" in sys.modules or _jinja_available()):
        try:
            import jinja2
            from jinja2 import meta

            env = jinja2.Environment()
            found = meta.find_undeclared_variables(env.parse(text))
            order = {n: text.find(n) for n in found}
            return sorted(found, key=lambda n: (order[n], n))
        except Exception:  # Mustache sections ({{#x}}) and other non-Jinja syntax: the plain pattern
            pass
    names = []
    for _, name in _DOUBLE.findall(text):
        root = name.split(".")[0]
        if root not in names:
            names.append(root)
    return names


_JINJA: list = []


def _jinja_available() -> bool:
    if not _JINJA:
        import importlib.util

        _JINJA.append(importlib.util.find_spec("jinja2") is not None)
    return _JINJA[0]


def _prose_words(text: str) -> list[str]:
    """Whitespace-separated words of text outside placeholders (a path, URL or code token is not one)."""
    bare = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{[^{}]*\}", " ", text, flags=re.S)
    return [w for w in bare.split() if _WORD.match(w)]


def _is_json(text: str) -> bool:
    t = text.strip()
    if not t or t[0] not in "{[":
        return False
    try:
        json.loads(t)
    except ValueError:
        return False
    return True


def _is_sql(text: str) -> bool:
    """A SQL statement (a query template with ``{placeholders}`` is still code, not a prompt)."""
    m = _SQL_VERB.match(text)
    if m is None or not _SQL_CLAUSE.search(text, m.end()):
        return False
    verb = m.group(1)
    if verb.isupper():
        return True
    return verb.islower() and bool(_SQL_CODE.search(text, m.end()))


def _formats_values(text: str) -> bool:
    """A str.format field with a format spec or a conversion (``{loss:.4f}``, ``{x!r}``): text that
    formats values for display (a log or report line), which prompts rarely do."""
    try:
        return any(field is not None and (spec or conv) for _, field, spec, conv in string.Formatter().parse(text))
    except ValueError:
        return False


def describe_text(name: str, text: str) -> dict | None:
    """The prompt record of a str variable, or None when it is not a prompt (rules: module docstring)."""
    if len(text) > 20 * MAX_TEXT or _is_json(text) or _is_sql(text):
        return None
    found = placeholders(text)
    words = _prose_words(text)
    hinted = bool(_NAME_HINT.search(name))
    if found is None:
        if _PLAIN_PROMPT_HINT.search(name) and len(words) >= 3 and "{" not in text:
            return _record("text", [], text)
        return None
    style, names = found
    if not hinted and style == "format" and _formats_values(text):
        return None
    if not hinted:
        cue = any(w.strip(".,:;!?)\"'").lower() in _CUES for w in words)
        if len(words) < (MIN_CUE_WORDS if cue else MIN_WORDS):
            return None
    return _record(style, names, text)


def _record(kind: str, names: list[str], text: str) -> dict:
    out = {"kind": kind, "placeholders": list(names), "text": text[:MAX_TEXT]}
    if len(text) > MAX_TEXT:
        out["truncated"] = len(text)
    return out


# -- chat messages -----------------------------------------------------------------------------------
def _content_text(content) -> str | None:
    if content is None:  # an assistant message that only calls tools
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: [{"type": "text", "text": ...}, {"type": "image", ...}]
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
            elif isinstance(p, dict) and isinstance(p.get("type"), str):
                parts.append(f"<{p['type']}>")
            else:
                return None
        return "\n".join(parts)
    return None


def _messages_record(kind: str, messages: list[tuple[str, str]], names: list[str] | None = None) -> dict:
    text = "\n".join(f"[{role}]\n{content}" for role, content in messages)
    if names is None:
        names = []
        for _, content in messages:
            found = placeholders(content)
            for n in (found[1] if found else []):
                if n not in names:
                    names.append(n)
    return _record(kind, names, text)


def describe_chat(obj) -> dict | None:
    """The prompt record of a chat message list (dicts with role and content, or (role, text) pairs)."""
    if not isinstance(obj, (list, tuple)) or not obj or len(obj) > 10_000:
        return None
    messages = []
    for m in obj:
        if isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m:
            text = _content_text(m["content"])
            if text is None:
                return None
            messages.append((m["role"], text))
        elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) and m[0] in ROLES \
                and isinstance(m[1], str):
            messages.append(m)
        else:
            return None
    return _messages_record("chat", messages)


# -- library template objects ----------------------------------------------------------------------
def _module(obj) -> str:
    return type(obj).__module__ or ""


def describe_object(obj) -> dict | None:
    """The prompt record of a template object of a library: string.Template, LangChain prompt
    templates, Jinja2 templates (when their loader still has the source). Libraries are never imported
    here: an object of theirs exists only if the notebook imported them."""
    if isinstance(obj, string.Template):
        names = list(dict.fromkeys(obj.get_identifiers())) if hasattr(obj, "get_identifiers") else []
        return _record("string.Template", names, obj.template)
    mod = _module(obj)
    if mod.startswith("langchain") and "langchain_core" in sys.modules:
        return _langchain(obj)
    if mod.startswith("jinja2") and type(obj).__name__ == "Template":
        return _jinja_template(obj)
    return None


def _langchain(obj) -> dict | None:
    from langchain_core.prompts import BasePromptTemplate, ChatPromptTemplate, PromptTemplate

    if not isinstance(obj, BasePromptTemplate):
        return None
    kind = f"langchain.{type(obj).__name__}"
    names = list(getattr(obj, "input_variables", None) or [])
    if isinstance(obj, PromptTemplate):
        return _record(kind, names, obj.template)
    if isinstance(obj, ChatPromptTemplate):
        messages = []
        for m in obj.messages:
            role = _langchain_role(m)
            prompt = getattr(m, "prompt", None)
            if isinstance(getattr(prompt, "template", None), str):
                messages.append((role, prompt.template))
            elif isinstance(getattr(m, "variable_name", None), str):  # MessagesPlaceholder
                messages.append((role, "{" + m.variable_name + "}"))
            else:
                messages.append((role, _content_text(getattr(m, "content", "")) or ""))
        return _messages_record(kind, messages, names)
    template = getattr(obj, "template", None)
    return _record(kind, names, template) if isinstance(template, str) else None


def _langchain_role(m) -> str:
    role = getattr(m, "role", None) or getattr(m, "type", None)
    if isinstance(role, str):
        return role
    name = type(m).__name__  # SystemMessagePromptTemplate -> system
    for suffix in ("MessagePromptTemplate", "Message", "PromptTemplate"):
        if name.endswith(suffix) and name != suffix:
            return name[: -len(suffix)].lower()
    return "placeholder" if name == "MessagesPlaceholder" else name


def _jinja_template(obj) -> dict | None:
    """A Jinja2 Template keeps compiled code only; its source comes back through the loader it was
    loaded with (Environment.get_template), as Jinja's own error messages get it."""
    env, tname = getattr(obj, "environment", None), getattr(obj, "name", None)
    loader = getattr(env, "loader", None)
    if loader is None or not tname:
        return None
    try:
        source = loader.get_source(env, tname)[0]
    except Exception:  # the file is gone or changed loader: nothing exact to show
        return None
    found = placeholders(source)
    return _record("jinja2.Template", found[1] if found else [], source)


def describe(name: str, obj) -> dict | None:
    """The prompt record ``{"kind", "placeholders", "text"[, "truncated"]}`` of a namespace value, or
    None when it is not a prompt. `text` holds at most MAX_TEXT characters; "truncated" then gives the
    full length. Never raises (a value that breaks the inspection is simply not a prompt)."""
    try:
        if type(obj) is str:
            return describe_text(name, obj)
        if type(obj) in (list, tuple):
            return describe_chat(obj)
        return describe_object(obj)
    except Exception:
        return None


# -- the diff of two prompts -----------------------------------------------------------------------
def diff(old: dict, new: dict) -> dict:
    """The prompt part of a changed variable's diff: {"kind": "prompt", "prompt_kind": [old, new],
    "placeholders": {"old", "new", "added", "removed"}, "line_diff": unified diff lines (difflib,
    without the two file header lines), "truncated": bool}."""
    a, b = old.get("text", ""), new.get("text", "")
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "a", "b", lineterm="", n=2))[2:]
    pa, pb = list(old.get("placeholders") or []), list(new.get("placeholders") or [])
    return {"kind": "prompt", "prompt_kind": [old.get("kind"), new.get("kind")],
            "placeholders": {"old": pa, "new": pb, "added": [p for p in pb if p not in pa],
                             "removed": [p for p in pa if p not in pb]},
            "line_diff": lines, "truncated": bool(old.get("truncated") or new.get("truncated"))}


# -- generation settings ---------------------------------------------------------------------------
def _scalar(v) -> bool:
    return v is None or type(v) in (bool, int, float, str)


def generation_settings(obj) -> dict | None:
    """{setting: value} of a transformers GenerationConfig or of a dict holding generation settings
    (at least one of temperature, top_p, top_k, max_new_tokens, repetition_penalty), restricted to
    GENERATION_KEYS plus the model id (``model_id`` / ``model_name_or_path`` / ``model_name`` /
    ``model`` when a str); unset (None) settings are left out. None for anything else."""
    if type(obj).__name__ == "GenerationConfig" and _module(obj).startswith("transformers"):
        try:
            d = obj.to_dict()
        except Exception:
            return None
        out = {k: d[k] for k in GENERATION_KEYS if d.get(k) is not None and _scalar(d[k])}
        return out or None
    if type(obj) is not dict or not obj or len(obj) > 200 or not all(type(k) is str for k in obj):
        return None
    if not _GENERATION_MARKERS & obj.keys():
        return None
    out = {k: obj[k] for k in GENERATION_KEYS if obj.get(k) is not None and _scalar(obj[k])}
    for k in MODEL_ID_KEYS:
        if isinstance(obj.get(k), str) and len(obj[k]) <= 200:
            out["model_id"] = obj[k]
            break
    return out or None
