"""Settings of jupyter_mv, the Jupyter way: the traits of one traitlets `Configurable`, `JupyterMV`.

Where a value comes from, strongest first:

1. its environment variable (`JUPYTER_MV_CHUNK=1048576`), when set and not empty — so scripts, CI and the
   tests that always used them keep working;
2. the trait: `%config JupyterMV.chunk_size = 1048576` in a kernel, `c.JupyterMV.chunk_size = 1048576` in
   `ipython_config.py` (kernel) or `jupyter_server_config.py` (the server extension);
3. the trait's default.

Values are read where they are used (`current().chunk_size` at each snapshot), never at import time, so a
`%config` change applies to the next snapshot. The two safety switches (`trust_imported`,
`detect_credentials`) have no environment variable on purpose: an inherited variable would lower a
defence nobody chose to lower; they are set in a config file or with `%config`.

Core layer: traitlets and errors.py only (no IPython, tornado or anywidget). The kernel registers its
instance with the shell through `register(shell)` (called by the magics' loader); the server extension
builds its own from the server's config and hands it to `server.location` through `view(cfg)`.
"""

from __future__ import annotations

import os
import threading
import warnings

from traitlets import Bool, Float, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from .errors import UsageError

__all__ = ["JupyterMV", "ENV", "current", "view", "register", "use"]

KiB, MiB, GiB = 1024, 1024 ** 2, 1024 ** 3

# trait -> the environment variable that overrides it
ENV = {
    "store": "JUPYTER_MV_STORE",
    "notebook": "JUPYTER_MV_NOTEBOOK",
    "chunk_size": "JUPYTER_MV_CHUNK",
    "pack_max": "JUPYTER_MV_PACK_MAX",
    "max_bundle_bytes": "JUPYTER_MV_MAX_BUNDLE_BYTES",
    "auto_keep": "JUPYTER_MV_AUTO_KEEP",
    "undo_depth": "JUPYTER_MV_UNDO_DEPTH",
    "author": "JUPYTER_MV_AUTHOR",
    "lease_ttl": "JUPYTER_MV_LEASE_TTL",
    "debug": "JUPYTER_MV_DEBUG",
    "map_restores": "JUPYTER_MV_MAP_RESTORES",
}
_FALSE = ("0", "false", "no", "off")


class JupyterMV(Configurable):
    """jupyter_mv's settings (traitlets). Each may be overridden by the environment variable named in its
    help; see the module docstring for the precedence."""

    store = Unicode("", help="""Directory of the version store (created on the first snapshot). Empty: `.jupyter_mv`
        in the kernel's working directory (normally the notebook's folder); for the server extension, the
        `.jupyter_mv` beside each notebook. A relative path is taken from the working directory, `~` is
        expanded. Environment variable: JUPYTER_MV_STORE.""").tag(config=True)

    notebook = Unicode("", help="""Path of the notebook this kernel runs, for frontends that do not say (a
        script, a plain `ipython`). The JupyterLab extension's word and VS Code's `__vsc_ipynb_file__` come
        first; JPY_SESSION_NAME after it; empty and none of them: "unnamed notebook". Environment variable:
        JUPYTER_MV_NOTEBOOK.""").tag(config=True)

    chunk_size = Int(4 * MiB, min=1, max=GiB, help="""Size in bytes of the chunks a variable's buffers are cut into
        before hashing (only changed chunks are written again); at most 1 GiB, the largest chunk a bundle
        import or a pull accepts. Applies to the next snapshot; chunks already stored stay valid (the manifest
        records each one). Environment variable: JUPYTER_MV_CHUNK.""").tag(config=True)

    pack_max = Int(256 * KiB, min=0, help="""Chunks of at most this many bytes are appended to shared pack files
        instead of one file each (0: every chunk its own file). Environment variable: JUPYTER_MV_PACK_MAX."""
                   ).tag(config=True)

    max_bundle_bytes = Int(64 * GiB, min=1, help="""Largest total size in bytes, decompressed, of a bundle
        (.mvz) `import` accepts; a larger one is refused before anything is written (a zip-bomb guard).
        Environment variable: JUPYTER_MV_MAX_BUNDLE_BYTES.""").tag(config=True)

    auto_keep = Int(0, min=0, help="""Retention of automatic versions (`%mv_auto on`): keep only the last N
        (tagged, named and manual versions always stay); 0 keeps all. `%mv_auto on --keep N` overrides it for
        the session. Environment variable: JUPYTER_MV_AUTO_KEEP.""").tag(config=True)

    undo_depth = Int(20, min=0, help="""How many executed cells `%mv_undo` can walk back. Before each cell the kernel
        records its variables in a private journal (a temporary directory, removed when the kernel exits): only
        chunks that changed since the previous cell are written, but every variable is encoded and hashed, so a
        cell costs about what an automatic snapshot does. 0 turns the journal (and undo) off. Environment
        variable: JUPYTER_MV_UNDO_DEPTH.""").tag(config=True)

    author = Unicode("", help="""Who pushes versions to a remote (`%mv_push`, `jupyter-mv push`, the sidebar's
        Push), recorded with each version and shown to the team (`remote ls`, the author of pulled versions).
        Empty: the git user (`git config user.email`, else user.name), else user@host. Environment variable:
        JUPYTER_MV_AUTHOR.""").tag(config=True)

    lease_ttl = Float(120.0, min=1.0, max=7 * 86400.0, help="""Seconds (1 to 604800, a week) a push's lease on a remote lives without renewal (a push renews
        it every quarter of that while it runs). `remote gc` waits while a live lease exists and a push waits
        while a gc sweeps; a pusher killed mid-push stops blocking gc once its lease is this old. Every client
        of one remote should use the same value. Environment variable: JUPYTER_MV_LEASE_TTL.""").tag(config=True)

    trust_imported = Bool(False, help="""Trust the data of imported (bundle) versions: unpickle it without
        `--trust` / `trust=True`. Default False: data made elsewhere is never unpickled without the user's
        say-so. Recorded outputs of imported versions are always shown sanitized, whatever this says. No
        environment variable (set it deliberately, in a config file or with %config).""").tag(config=True)

    detect_credentials = Bool(True, help="""Detect credentials (API keys, tokens, passwords; detect-secrets):
        snapshots skip variables holding one unless named, exports withhold them, views mask them. False turns
        all of that off: credentials are stored, exported and shown like any value. No environment variable
        (set it deliberately, in a config file or with %config).""").tag(config=True)

    map_restores = Bool(True, help="""Restore large buffers (1 MiB and more: model weights, big arrays) by mapping their
        chunk files privately (mmap, copy-on-write) instead of copying them into new memory, as
        `from_pretrained` maps a safetensors file: several times faster for a model, and the pages are shared
        with the page cache until written. Every chunk is still re-hashed. Linux only (elsewhere restores
        read). False: always read (e.g. a store on a network file system another machine rewrites).
        Environment variable: JUPYTER_MV_MAP_RESTORES (any value but '', 0, false, no, off).""").tag(config=True)

    debug = Bool(False, help="""Show the full traceback of an unexpected error (magics, CLI, widgets) instead
        of one line. Environment variable: JUPYTER_MV_DEBUG (any value but '', 0, false, no, off).""").tag(config=True)

    @validate("chunk_size", "pack_max", "max_bundle_bytes", "auto_keep", "undo_depth", "lease_ttl")
    def _a_number(self, proposal):
        # traitlets takes True for 1 (bool is an int) and NaN for a float (NaN < min is False): neither is
        # a size, a count or a number of seconds
        value = proposal["value"]
        name = proposal["trait"].name
        if isinstance(value, bool) or (isinstance(value, float) and value != value):
            raise TraitError(f"JupyterMV.{name} must be a number, not {value!r}")
        return value

    @observe(*ENV)
    def _overridden(self, change) -> None:
        # setting a trait the environment overrides would do nothing: say so instead of silently ignoring it
        env = ENV[change["name"]]
        if os.environ.get(env):
            warnings.warn(f"JupyterMV.{change['name']} = {change['new']!r} has no effect while the environment "
                          f"variable {env} is set ({os.environ[env]!r}); unset it to use the setting", stacklevel=2)


def _from_env(name: str, raw: str, trait):
    """`raw` (an environment variable's text) as the trait's value; UsageError naming the variable if invalid."""
    env = ENV[name]
    if isinstance(trait, Bool):
        return raw.strip().lower() not in _FALSE
    if isinstance(trait, Int):
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            unit = {"auto_keep": "versions", "undo_depth": "cells"}.get(name, "bytes")
            raise UsageError(f"{env}={raw!r} is not a whole number of {unit}; "
                             f"unset it or set e.g. {env}={trait.default_value}") from None
        if value < (trait.min or 0) or (trait.max is not None and value > trait.max):
            bound = f"at least {trait.min}" + (f" and at most {trait.max}" if trait.max is not None else "")
            raise UsageError(f"{env}={raw!r} must be {bound}; unset it or set e.g. {env}={trait.default_value}")
        return value
    if isinstance(trait, Float):
        try:
            value = float(raw.strip().replace("_", ""))
        except ValueError:
            raise UsageError(f"{env}={raw!r} is not a number of seconds; unset it or set e.g. "
                             f"{env}={trait.default_value:g}") from None
        if not (trait.min or 0) <= value <= (trait.max if trait.max is not None else float("inf")) \
                or value == float("inf"):  # NaN and inf too
            bound = f"at least {trait.min:g}" + (f" and at most {trait.max:g}" if trait.max is not None else "")
            raise UsageError(f"{env}={raw!r} must be a number of seconds of {bound}; unset it or "
                             f"set e.g. {env}={trait.default_value:g}")
        return value
    if name != "store" and any("\udc80" <= c <= "\udcff" for c in raw):
        # undecodable bytes (PEP 383 surrogates) are a legal store folder name, but a notebook path or an
        # author is text written to SQLite and JSON, which refuse them
        raise UsageError(f"{env}={raw!r} holds bytes that are not UTF-8; unset it or set it to UTF-8 text")
    return raw


class View:
    """The effective settings of one `JupyterMV`: attribute `x` is the environment variable of trait `x` when
    set and not empty, else the trait. Read on every access, so changes of either apply at once."""

    __slots__ = ("config",)

    def __init__(self, config: JupyterMV):
        self.config = config

    def __getattr__(self, name: str):
        env = ENV.get(name)
        raw = os.environ.get(env) if env else None
        if raw:
            return _from_env(name, raw, JupyterMV.class_traits()[name])
        return getattr(self.config, name)

    def source(self, name: str) -> str:
        """Where `name`'s value comes from: the environment variable's name, or 'JupyterMV.<name>'."""
        env = ENV.get(name)
        return env if env and os.environ.get(env) else f"JupyterMV.{name}"


_current: JupyterMV | None = None
_lock = threading.Lock()


def current() -> View:
    """The settings the core reads (`current().chunk_size`): those of the instance registered with the running
    shell, else defaults (outside IPython: the CLI, scripts), environment variables applied on top."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = JupyterMV()
    return View(_current)


def view(config: JupyterMV | None) -> View:
    """The effective settings of `config` (the server extension's own instance); `current()` when None."""
    return View(config) if config is not None else current()


def use(config: JupyterMV | None) -> JupyterMV | None:
    """Make `config` the instance `current()` reads (None: back to defaults); returns the previous one."""
    global _current
    with _lock:
        before, _current = _current, config
    return before


def register(shell) -> JupyterMV:
    """Kernel side: a `JupyterMV` built from the shell's config (`ipython_config.py`, command line), added to
    `shell.configurables` so `%config JupyterMV` lists it and `%config JupyterMV.x = …` updates it, and made
    current. Loading the extension again reuses the one already registered."""
    cfg = next((c for c in getattr(shell, "configurables", ()) if isinstance(c, JupyterMV)), None)
    if cfg is None:
        cfg = JupyterMV(config=shell.config)
        shell.configurables.append(cfg)
    use(cfg)
    return cfg
