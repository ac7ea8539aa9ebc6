"""Credentials: finding API keys, tokens, passwords and connection-string passwords in variables,
params, messages, cell sources and outputs, and masking them (`sk-…****`).

Detection is the plugins of Yelp's `detect-secrets` (https://github.com/Yelp/detect-secrets): known
key formats (AWS, GitHub, Slack, Stripe, JWT, private keys, …), high-entropy base64/hex strings,
URL basic-auth passwords (`postgresql://user:PASSWORD@host`) and keyword assignments
(`API_KEY = "…"`, `password = "…"`), with its false-positive filters (UUIDs, sequences, templates,
indirect references). Two additions, for what its 1.5 release does not know: token formats it has
no plugin for (Hugging Face `hf_…`, current OpenAI/Anthropic `sk-…` keys), written as detect-secrets
plugins, and variable-name hints (`HF_TOKEN`, `client.api_key`, `db_password`) used only together
with a token-shaped value.

Stdlib, detect-secrets and config.py only (L1): the core decides what to store, export and show with it.
config.JupyterMV.detect_credentials = False turns detection off (every detector finds nothing).
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import threading
import types
from dataclasses import dataclass

from . import config

__all__ = ["Finding", "mask", "find_in_text", "mask_text", "scan_object", "scan_string", "is_credential"]

MASK = "****"
MAX_STRING = 256 * 1024  # characters of one string that are searched (a credential sits near the start)
MAX_LINE = 4096  # longer lines are searched in overlapping windows
MAX_NODES = 2000  # objects visited inside one variable
MAX_DEPTH = 6
MIN_EAGER = 20  # an unquoted high-entropy token in prose or output must be at least this long
MAX_EAGER = 2048  # ... and at most this long: longer ones are encoded data (images, arrays), not keys
# embedded pictures and files (`src="data:image/png;base64,…"`) are data, never searched
_DATA_URI = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,[A-Za-z0-9+/=]+")

# Names that say "this holds a credential": the last word(s) of a variable, attribute or key name.
_NAME_HINT = re.compile(r"(?:^|_)(?:api_?key|apikey|access_?key|secret(?:_?key)?|(?:access_|auth_|refresh_|bearer_)?"
                        r"token|password|passwd|pwd|credentials?)$", re.I)
# A value a name hint applies to: token-shaped (no spaces or brackets) and not a plain word.
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_\-+/=.:~]{8,512}")
# Known prefixes kept visible when masking, so a user can tell which key was there.
_PREFIX = re.compile(r"(?:sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?|hf_|gh[pousr]_|github_pat_|xox[abposr]-|"
                     r"glpat-|AKIA|ASIA|pypi-|npm_|SG\.|sk_live_|sk_test_|rk_live_)")


@dataclass(frozen=True)
class Finding:
    """One credential: where it was found (`client.api_key`, `cfg['db']`, `cell 3 output`), what
    kind (the detect-secrets secret type, or "credential-named value") and its text."""

    where: str
    kind: str
    value: str

    @property
    def masked(self) -> str:
        return mask(self.value)

    def describe(self) -> str:
        return f"{self.where} ({self.kind}: {self.masked})"


def mask(value: str) -> str:
    """`sk-…****`: a known key prefix kept, the rest replaced; `****` for anything else."""
    m = _PREFIX.match(value)
    return f"{m.group(0)}…{MASK}" if m and len(value) > len(m.group(0)) + 8 else MASK


# -- the detector ------------------------------------------------------------------------------
def _extra_plugins() -> list:
    """Token formats detect-secrets 1.5 has no plugin for, as detect-secrets plugins."""
    from detect_secrets.plugins.base import RegexBasedDetector

    class HuggingFaceTokenDetector(RegexBasedDetector):
        """Hugging Face user access tokens."""

        secret_type = "Hugging Face Token"
        denylist = [re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")]

    class ModelProviderKeyDetector(RegexBasedDetector):
        """OpenAI (`sk-…`, `sk-proj-…`) and Anthropic (`sk-ant-…`) API keys of the current formats."""

        secret_type = "OpenAI/Anthropic API Key"
        denylist = [re.compile(r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_\-]{32,}")]

    return [HuggingFaceTokenDetector(), ModelProviderKeyDetector()]


def _import_detect_secrets() -> None:
    """Import detect-secrets keeping the session's warnings shown: its logger calls
    logging.captureWarnings(True) on import, which would send every warning of the user's session
    (jupyter_mv's skipped-variable warnings included) to logging instead of showing it. Call before
    any `from detect_secrets ... import`."""
    if "detect_secrets" in sys.modules:
        return
    import warnings

    shown = warnings.showwarning
    try:
        import detect_secrets  # noqa: F401
    finally:
        warnings.showwarning = shown


class _Detector:
    """detect-secrets plugins, called through `analyze_string` (never `analyze_line`, which may
    verify a key over the network when a baseline asks for it), with its heuristic filters."""

    def __init__(self):
        _import_detect_secrets()
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import (Base64HighEntropyString,
                                                                 HighEntropyStringsPlugin)
        from detect_secrets.plugins.ip_public import IPPublicDetector
        from detect_secrets.plugins.keyword import KeywordDetector, QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
        from detect_secrets.filters import heuristic

        self.h = heuristic
        self.regex_type, self.entropy_type, self.keyword_type = (RegexBasedDetector, HighEntropyStringsPlugin,
                                                                 KeywordDetector)
        self.keyword_groups = QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP  # Python's rules: quotes required
        self.plugins = [cls() for cls in get_mapping_from_secret_type_to_class().values()
                        if cls is not IPPublicDetector]  # a public IP address is no credential
        self.plugins += _extra_plugins()
        # unquoted base64 tokens in prose and outputs (detect-secrets' "eager" adhoc search, as a
        # separate instance whose regex is fixed, so concurrent scans never flip shared state)
        self.eager = Base64HighEntropyString()
        self.eager.regex = re.compile(r"([{}]+)".format(re.escape(self.eager.charset)))

    def _values(self, p, line: str):
        if isinstance(p, self.entropy_type):
            return [v for v in p.analyze_string(line) if p.calculate_shannon_entropy(v) > p.entropy_limit]
        if isinstance(p, self.keyword_type):
            return [v for v in p.analyze_string(line, denylist_regex_to_group=self.keyword_groups)
                    if v and not any(c.isspace() for c in v)]
        if isinstance(p, self.regex_type):
            if not any(True for _ in p.analyze_string(line)):  # the plugin's own checks (JWT validity, …)
                return []
            out = []
            for rx in p.denylist:
                for m in rx.finditer(line):
                    groups = [g for g in m.groups() if g and len(g) >= 8]
                    out.append(max(groups, key=len) if groups else m.group(0))  # the secret, not its label
            return out
        return list(p.analyze_string(line))

    def _kept(self, p, v: str, line: str) -> bool:
        h = self.h
        if not v or len(v) < 4:
            return False
        if h.is_sequential_string(v) or h.is_potential_uuid(v) or h.is_templated_secret(v):
            return False
        if h.is_prefixed_with_dollar_sign(v) or h.is_not_alphanumeric_string(v):
            return False
        if isinstance(p, self.keyword_type) and h.is_indirect_reference(line):
            return False
        if isinstance(p, self.keyword_type) and _ENV_NAME.fullmatch(v):
            return False  # the name of an environment variable (`API_KEY_VAR = "OPENAI_API_KEY"`), not its value
        if isinstance(p, self.entropy_type) and _path_like(v):
            return False
        return not h.is_likely_id_string(v, line, p)

    def line(self, line: str, eager: bool) -> tuple:
        found = []
        for p in self.plugins:
            try:
                for v in self._values(p, line):
                    if self._kept(p, v, line):
                        found.append((p.secret_type, v))
            except Exception:  # a plugin's bug must not break a snapshot; the others still run
                continue
        if eager and not found:
            e = self.eager
            for v in e.analyze_string(line):
                if MIN_EAGER <= len(v) <= MAX_EAGER and e.calculate_shannon_entropy(v) > e.entropy_limit and self._kept(e, v, line):
                    found.append((e.secret_type, v))
        return tuple(dict.fromkeys(found))


# One segment of a path or URL as people write them: lower case (or a leading capital), digits and
# `._=-`, or all upper case. A random base64 token split at its `/` (an AWS secret key can hold one)
# has segments of mixed case.
_PATH_SEGMENT = re.compile(r"[A-Z]?[a-z0-9._=~+-]*|[A-Z0-9._=~+-]*")


def _path_like(v: str) -> bool:
    """Does a high-entropy match read as a path or URL (`//bucket/experiments/2024-01-01/run_8f3a9c2b/model`)
    rather than a key? Two or more `/` and every segment path-shaped: the base64 alphabet includes
    `/`, so detect-secrets' entropy plugins see a long path as one high-entropy string."""
    segments = [x for x in v.split("/") if x]
    return v.count("/") >= 2 and len(segments) >= 2 and all(_PATH_SEGMENT.fullmatch(x) for x in segments)


# An environment variable's name in upper snake case, every word holding a letter (`OPENAI_API_KEY`,
# `HF_TOKEN`); `ADMIN_2024` is not one.
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]{0,15}(?:_(?=[A-Z0-9]*[A-Z])[A-Z0-9]{1,16})+")


_detector: _Detector | None = None
_lock = threading.Lock()


def enabled() -> bool:
    """Is credential detection on (config.JupyterMV.detect_credentials, default True)? Every detector
    below answers "nothing found" when it is off, so storing, exporting and masking all follow it."""
    return config.current().detect_credentials


def _get() -> _Detector:
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = _Detector()
    return _detector


# What every plugin needs to fire, so text without it skips the plugins: a token of 16 or more
# key characters (every key format and high-entropy string), `=`/`:` (keyword assignments,
# `AccountKey=`, `user:pass@`), `@` or "PRIVATE KEY". A speed shortcut, never a detection rule.
_MAYBE = re.compile(r"[A-Za-z0-9+/=_\-.~]{16}|[=:@]|PRIVATE KEY")


@functools.lru_cache(maxsize=65536)
def _scan_line(line: str, eager: bool) -> tuple:
    if not _MAYBE.search(line):
        return ()
    return _get().line(line, eager)


_PEM_END = "-----END"
_HEX = "Hex High Entropy String"
_ENTROPY = (_HEX, "Base64 High Entropy String")


# Credentials set without Python quotes, where detect-secrets' keyword rules for Python do not look:
# IPython's `%env NAME=value` / `%env NAME value` / `%set_env` (and the `env: NAME=value` it prints), shell `export NAME=value` (`!export`,
# a %%bash cell), an HTTP `Authorization: Bearer …` or `X-API-Key: …` header, a bare `Bearer …`.
# The value is then judged as if assigned to NAME (the name hints and keyword rules apply).
_ENV_SET = re.compile(r"^\s*(?:[%!]\s*)?(?:env:?|set_env|setenv|export)\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s*=\s*|\s+)"
                      r"(['\"]?)([^\s'\"]{4,})\2\s*(?:#.*)?$")
_HEADER = re.compile(r"(?i)\b(?:(x-api-key|api-key|x-auth-token|private-token)\s*[:=]\s*|(?:authorization\s*[:=]\s*)?"
                     r"(bearer|token)\s+)([A-Za-z0-9._~+/=\-]{12,})")


def _assigned_in_shell(line: str) -> list[tuple[str, str]]:
    """(kind, value) of credentials set in `line` by an env magic, a shell export or an HTTP header."""
    if "env" not in line and "export" not in line and not re.search(r"(?i)bearer|token|api-key", line):
        return []
    found = []
    m = _ENV_SET.match(line)
    if m:
        found += _scan_string(m.group(1), m.group(3))
    for h in _HEADER.finditer(line):
        found += _scan_string("api_key" if h.group(1) else "token", h.group(3))
    return found


def find_in_text(text: str, prose: bool = False) -> list[tuple[str, str]]:
    """(kind, value) of every credential in `text` (code by default; `prose=True` for messages and
    outputs, where a key stands unquoted). A private key's whole PEM block counts as its value.
    Nothing when detection is off (config.JupyterMV.detect_credentials)."""
    if not text or not isinstance(text, str) or not enabled():
        return []
    text = _DATA_URI.sub("data:,", text[:MAX_STRING * 4])
    out: list = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        pieces = [line] if len(line) <= MAX_LINE else [line[k: k + MAX_LINE] for k in
                                                       range(0, len(line), MAX_LINE - 200)]
        for piece in pieces:
            out += _assigned_in_shell(piece)
            for kind, v in _scan_line(piece, prose):
                if kind == _HEX:
                    continue  # hashes and commit ids, mostly; a hex key assigned to a key-like name is a keyword hit
                if kind == "Private Key":
                    j = next((k for k in range(i, len(lines)) if _PEM_END in lines[k]), i)
                    out.extend((kind, ln.strip()) for ln in lines[i: j + 1] if ln.strip())
                    i = j
                else:
                    out.append((kind, v))
        i += 1
    return list(dict.fromkeys(out))


def mask_text(text: str, values) -> str:
    """`text` with every one of `values` replaced by its mask (longest first)."""
    if not text or not values:
        return text
    for v in sorted(set(values), key=len, reverse=True):
        if v and v in text:
            text = text.replace(v, mask(v))
    return text


# -- values and objects ------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _keywordish(name: str) -> bool:
    """Would detect-secrets' keyword rules or our name hints look at a value held under `name`?"""
    _import_detect_secrets()
    _import_detect_secrets()
    from detect_secrets.plugins.keyword import DENYLIST_REGEX

    return name_hinted(name) or bool(re.search(DENYLIST_REGEX, name or "", re.I))


def name_hinted(name: str) -> bool:
    """Does the name (variable, attribute or dict key) say it holds a credential?"""
    return bool(_NAME_HINT.search(name or ""))


# Longer than any API key, token or password without a format of its own (AWS 40, OpenAI project
# keys ~164, GitHub fine-grained 93, Azure storage 88 characters); private keys and JWTs have their
# own detectors. A longer high-entropy string in a variable is encoded data: an embedding, a thumbnail.
MAX_KEY = 256
# base64 of a file's first bytes: PNG, JPEG, GIF, PDF, zip, .npy, RIFF (WebP, WAV)
_FILE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"%PDF", b"PK\x03\x04", b"\x93NUMPY", b"RIFF")


def _encoded_data(v: str) -> bool:
    """Is a high-entropy match encoded data rather than a key (see MAX_KEY, _FILE_MAGIC)?"""
    if len(v) > MAX_KEY:
        return True
    import base64
    import binascii

    try:
        head = base64.b64decode(v[:12], validate=False)
    except (binascii.Error, ValueError):
        return False
    return head.startswith(_FILE_MAGIC)


@functools.lru_cache(maxsize=65536)
def _scan_string(hint: str, value: str) -> tuple:
    s = _DATA_URI.sub("data:,", value[:MAX_STRING])
    found = []
    if not _MAYBE.search(s) and not _keywordish(hint):
        return ()  # nothing any plugin could fire on, and a name no keyword rule looks at
    if "\n" not in s.strip():
        # as the assignment a notebook would hold, so keyword rules see the name (`API_KEY = "…"`)
        quote = "'" if '"' in s else '"'
        found += [f for f in _scan_line(f"{hint or 'value'} = {quote}{s.strip()}{quote}"[:MAX_LINE * 4], False)]
        found += list(_scan_line(s.strip()[:MAX_LINE * 4], True))
        if not name_hinted(hint):  # a bare hex string is a hash or an id far more often than a key
            found = [f for f in found if f[0] != _HEX]
        # random-looking text matching no key format is encoded data (an image, an array) when it
        # is longer than any key or decodes to a file's signature; known formats were kept above
        found = [f for f in found if not (f[0] in _ENTROPY and _encoded_data(f[1]))]
    else:
        found += find_in_text(s, prose=True)
    if not found and name_hinted(hint) and _TOKEN_SHAPED.fullmatch(s.strip()) and any(c.isdigit() for c in s):
        d = _get()
        if d._kept(None, s.strip(), s):
            found.append(("credential-named value", s.strip()))
    return tuple(dict.fromkeys(found))


def scan_string(name: str, value: str) -> list[tuple[str, str]]:
    """(kind, value) of the credentials in one string held under `name` (none when detection is off)."""
    if not isinstance(value, str) or len(value.strip()) < 4 or not enabled():
        return []
    return list(_scan_string(name or "", value))


def is_credential(name: str, value) -> bool:
    """Is this scalar (a param value, a string variable) a credential or does it hold one?"""
    return isinstance(value, str) and bool(scan_string(name, value))


_SKIP_MODULES = ("numpy", "pandas", "torch", "scipy", "pyarrow", "polars", "tensorflow", "jax")


def _by_value(o) -> bool:
    """A function or class defined in the notebook (module `__main__`): cloudpickle stores it by
    value — its code constants, defaults, closure and class attributes go into the stored bytes, so
    a key written as a literal inside a notebook-defined function or class is stored with it."""
    return isinstance(o, (types.FunctionType, type)) and getattr(o, "__module__", None) == "__main__"


def _code_strings(code: types.CodeType, limit: int = MAX_NODES) -> list[str]:
    """The string constants of a code object and of the code nested in it (inner functions,
    comprehensions), which is what a pickled-by-value function carries."""
    out, stack, seen = [], [code], 0
    while stack and seen < limit:
        c = stack.pop()
        seen += 1
        for k in c.co_consts:
            if isinstance(k, str):
                out.append(k)
            elif isinstance(k, types.CodeType):
                stack.append(k)
            elif isinstance(k, (tuple, frozenset)):
                out += [x for x in k if isinstance(x, str)]
    return out


def _by_value_fields(o) -> dict:
    """What a notebook-defined function or class carries into its pickle, by name: a function's
    string constants (under its own name), defaults and closure variables; a class's attributes."""
    fields: dict = {}
    if isinstance(o, types.FunctionType):
        for i, k in enumerate(_code_strings(o.__code__)):
            fields[f"<code {i}>"] = k
        for i, d in enumerate(o.__defaults__ or ()):
            fields[f"__defaults__[{i}]"] = d
        fields.update({f"{k}": v for k, v in (o.__kwdefaults__ or {}).items()})
        for name, cell in zip(o.__code__.co_freevars, o.__closure__ or ()):
            try:
                fields[name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
    else:
        for k, v in vars(o).items():
            if k not in ("__dict__", "__weakref__", "__module__", "__qualname__"):
                fields[k] = v
    return fields


def _opaque(o) -> bool:
    """Objects not searched: code, classes, and the array/frame/tensor types (data, not config).
    Functions and classes defined in the notebook are searched (see `_by_value`)."""
    if _by_value(o):
        return False
    if isinstance(o, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                      type, types.CodeType, types.FrameType)):
        return True
    mod = type(o).__module__ or ""
    if mod.split(".")[0] in _SKIP_MODULES:
        return not hasattr(o, "__dict__") or mod.startswith(("numpy", "pandas", "pyarrow", "polars"))
    return False


def scan_object(name: str, obj, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> list[Finding]:
    """The credentials a variable holds: itself when a string, else strings inside it (dict values
    and keys' names, list items, attributes of objects such as `client.api_key`), up to `max_depth`
    levels and `max_nodes` objects. Arrays, frames, tensors and code are not searched. None when
    detection is off (config.JupyterMV.detect_credentials)."""
    out: list[Finding] = []
    if not enabled():
        return out
    seen: set = set()
    stack = [(name, name, obj, 0)]
    nodes = 0
    while stack and nodes < max_nodes:
        path, hint, o, depth = stack.pop()
        nodes += 1
        if isinstance(o, str):
            out += [Finding(path, k, v) for k, v in scan_string(hint, o)]
            continue
        if isinstance(o, (bytes, bytearray)):
            if 4 <= len(o) <= MAX_STRING:
                text = bytes(o).decode("utf-8", "ignore")
                out += [Finding(path, k, v) for k, v in scan_string(hint, text)]
            continue
        if o is None or isinstance(o, (bool, int, float, complex)) or depth >= max_depth or id(o) in seen:
            continue
        seen.add(id(o))
        try:
            if _opaque(o):
                continue
            if isinstance(o, dict):
                items = list(itertools.islice(o.items(), max_nodes))  # never copy a huge container whole
                for k, v in reversed(items):
                    key = k if isinstance(k, str) else repr(k)
                    stack.append((f"{path}[{key!r}]", key, v, depth + 1))
                    if isinstance(k, str):
                        stack.append((f"{path} key", "key", k, depth + 1))
                continue
            fields_of = getattr(type(o), "_fields", None)
            if isinstance(o, tuple) and isinstance(fields_of, tuple) and len(fields_of) == len(o):
                # a namedtuple: its field names say what the items are (`Login(user, password)`)
                for k, v in reversed(list(zip(fields_of, o))[:max_nodes]):
                    stack.append((f"{path}.{k}", str(k), v, depth + 1))
                continue
            if isinstance(o, functools.partial):  # its bound arguments are pickled with it
                stack.append((f"{path}.args", hint, o.args, depth + 1))
                stack.append((f"{path}.keywords", hint, o.keywords, depth + 1))
                continue
            if isinstance(o, (list, tuple, set, frozenset)):
                items = list(itertools.islice(o, max_nodes))
                for i, v in reversed(list(enumerate(items))):
                    stack.append((f"{path}[{i}]", hint, v, depth + 1))
                continue
            if _by_value(o):  # a notebook-defined function or class: what its pickle carries
                for k, v in reversed(list(itertools.islice(_by_value_fields(o).items(), max_nodes))):
                    hint = o.__name__ if k.startswith("<code") else k.lstrip("_")
                    stack.append((f"{path}.{k}" if not k.startswith("<code") else f"{path} (code)", hint, v,
                                  depth + 1))
                continue
            fields = {}
            d = getattr(o, "__dict__", None)
            if isinstance(d, dict):
                fields.update(d)
            for slot in getattr(type(o), "__slots__", ()) or ():
                if isinstance(slot, str) and hasattr(o, slot):
                    fields[slot] = getattr(o, slot)
            if _by_value(type(o)):  # an instance pickles its notebook-defined class along with it
                fields[f"__class__ {type(o).__name__}"] = type(o)
            for k, v in reversed(list(itertools.islice(fields.items(), max_nodes))):
                if isinstance(k, str):
                    if k.startswith("__class__ "):
                        stack.append((f"{path}'s class {type(o).__name__}", "", v, depth + 1))
                        continue
                    stack.append((f"{path}.{k}", k.lstrip("_"), v, depth + 1))
        except Exception:  # an object whose attributes cannot be read holds nothing we can see
            continue
    return list({(f.where, f.value): f for f in out}.values())


# -- masking what is shown or shared ------------------------------------------------------------
MIN_TEXT = 8  # shorter text holds no credential worth the scan


def _values_in(text: str, prose: bool = True) -> list[str]:
    if not isinstance(text, str) or len(text) < MIN_TEXT:
        return []
    return [v for _, v in find_in_text(text, prose=prose)]


def mask_json(x, prose: bool = True):
    """A JSON-like value (dicts, lists, strings) with every credential in its strings masked."""
    if isinstance(x, str):
        vals = _values_in(x, prose)
        return mask_text(x, vals) if vals else x
    if isinstance(x, dict):
        return {k: mask_json(v, prose) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [mask_json(v, prose) for v in x]
    return x


def param_holds_credential(key: str, value) -> bool:
    """Is this param value a credential or does it hold one, the names inside it counting
    (`{"conn": {"password": "…"}}`: the dict key says what the string is)?"""
    if isinstance(value, str):
        return is_credential(key, value)
    if value is None or isinstance(value, (bool, int, float)):
        return False
    # (not `mask_json(value) != value`: a tuple comes back as a list, so every tuple param looked
    # like a credential, and a numpy array param made the comparison raise and the snapshot abort)
    return bool(scan_object(key, value)) or _strings_masked(value)


def _strings_masked(x) -> bool:
    """Would mask_json change a string inside this JSON-like value?"""
    if isinstance(x, str):
        return bool(_values_in(x, True))
    if isinstance(x, dict):
        return any(_strings_masked(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_strings_masked(v) for v in x)
    return False


def _mask_values(x, values: list[str]):
    """A JSON-like value with each of `values` masked in every string inside it."""
    if isinstance(x, str):
        return mask_text(x, values)
    if isinstance(x, dict):
        return {k: _mask_values(v, values) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_mask_values(v, values) for v in x]
    return x


def param_value(key: str, value):
    """A param value as shown: masked when it is or holds a credential (the key's name counts, and
    inside a dict each key's name)."""
    if isinstance(value, str):
        found = scan_string(str(key), value)
        return mask_text(value, [v for _, v in found]) if found else value
    if isinstance(value, (dict, list, tuple)):
        found = [f.value for f in scan_object(str(key), value)]
        if found:
            value = _mask_values(value, found)
    return mask_json(value)


def mask_params(params: dict) -> dict:
    return {k: param_value(k, v) for k, v in params.items()}


def mask_version(v):
    """A Version (model.Version) as shown: params, message, name and tags masked. The same object
    when nothing needed masking."""
    from dataclasses import replace

    params = mask_params(v.params)
    message, name = mask_json(v.message), mask_json(v.name)
    tags = tuple(mask_json(t) for t in v.tags)
    if params == v.params and message == v.message and name == v.name and tags == tuple(v.tags):
        return v
    return replace(v, params=params, message=message, name=name, tags=tags)


# text a person reads; structured payloads (plotly's base64 arrays, widget state) are data, not prose
_TEXT_MIMES = ("text/", "application/json")


def mask_output(o: dict) -> tuple[dict, bool]:
    """One nbformat output with credentials in its text (stream, text-like mime types, error
    value and traceback) masked; images are left alone. (output, whether anything was masked)."""
    if not isinstance(o, dict):
        return o, False
    t = o.get("output_type")
    out = dict(o)
    if t == "stream":
        text = o.get("text", "")
        out["text"] = mask_json("".join(text) if isinstance(text, list) else text)
    elif t in ("display_data", "execute_result"):
        data = dict(o.get("data") or {})
        for mime, value in data.items():
            if str(mime).startswith(_TEXT_MIMES):
                data[mime] = mask_json(value)
        out["data"] = data
        if o.get("metadata"):
            out["metadata"] = mask_json(o["metadata"])
    elif t == "error":
        out["evalue"] = mask_json(o.get("evalue", ""))
        out["traceback"] = mask_json(list(o.get("traceback") or []))
    changed = _norm(out) != _norm(o)
    return (out if changed else o), changed


def _norm(o):
    """An output with list-of-lines text joined (and tuples as lists), to compare before and after."""
    if isinstance(o, (list, tuple)):
        if all(isinstance(s, str) for s in o):
            return "".join(o)
        return [_norm(x) for x in o]
    if isinstance(o, dict):
        return {k: _norm(v) for k, v in o.items()}
    return o


def mask_cell(cell, prose_source: bool = False):
    """A model.Cell with credentials masked in its source (scanned as code unless `prose_source`)
    and outputs. (cell, source masked?, [indexes of masked outputs])."""
    from dataclasses import replace

    source = mask_json(cell.source, prose=prose_source)
    outs, masked = [], []
    for i, o in enumerate(cell.outputs):
        mo, changed = mask_output(o)
        outs.append(mo)
        if changed:
            masked.append(i)
    if source == cell.source and not masked:
        return cell, False, []
    return replace(cell, source=source, outputs=tuple(outs)), source != cell.source, masked


def mask_diff(d):
    """A model.Diff as shown: params by key, and every string of variables and cells masked."""
    from dataclasses import replace

    p = d.params
    params = {
        "added": mask_params(p.get("added") or {}), "removed": mask_params(p.get("removed") or {}),
        "changed": {k: [param_value(k, o), param_value(k, n)] for k, (o, n) in (p.get("changed") or {}).items()},
        "same": mask_params(p.get("same") or {}),
    }
    cells = []
    for c in d.cells:
        c = dict(c)
        images = c.pop("images", None)  # base64 pictures: nothing to read, costly to scan
        c = mask_json(c)
        if images is not None:
            c["images"] = images
        cells.append(c)
    return replace(d, params=params, variables=mask_json(d.variables), cells=cells)


def mask_details(info: dict) -> dict:
    """`api.show()`'s dict as shown: params by key, everything else (message, summaries, cell
    sources and outputs) masked string by string; package lists are left alone."""
    out = dict(info)
    env = out.pop("environment", None)
    params = out.pop("params", {})
    cells = out.pop("cells", [])
    out = mask_json(out)
    out["params"] = mask_params(params or {})
    out["cells"] = [_mask_cell_dict(c) for c in cells]
    if env is not None:
        out["environment"] = env
    return out


def _mask_cell_dict(c: dict) -> dict:
    c = dict(c)
    c["source"] = mask_json(c.get("source", ""))
    c["outputs"] = [mask_output(o)[0] for o in c.get("outputs") or []]
    return c
