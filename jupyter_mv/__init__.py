"""jupyter_mv: notebook-native model versioning.

    %load_ext jupyter_mv            # magics: %mv_snapshot, %mv_log, %mv_diff, %mv_restore, ...
    import jupyter_mv as mv         # API: mv.snapshot, mv.history, mv.diff, mv.restore, mv.load
                                    # remotes: mv.remote_add, mv.push, mv.pull, mv.clone, mv.remote_ls
                                    # (inside IPython the import registers the magics too)
"""

from __future__ import annotations

__version__ = "0.1.0"

import sys

from . import api as _api
from .api import auto, history, load, open_store, outputs, restore, show, snapshot, tag, undo, variable_history, versions
from .api import export, import_bundle, to_mlflow
from .api import clone, pull, push, remote_add, remote_ls, remote_remove, remotes
from .errors import DecodeError, MVError, NothingToUndo, PartialRestore
from .diffview import Diff
from .model import Version

__all__ = [
    "snapshot", "history", "load", "restore", "diff", "open_store", "tag", "show", "versions", "outputs", "auto",
    "undo", "variable_history",
    "export", "import_bundle", "to_mlflow",
    "remote_add", "remote_remove", "remotes", "remote_ls", "push", "pull", "clone",
    "history_widget", "Diff", "Version", "MVError", "PartialRestore", "DecodeError", "NothingToUndo",
    "__version__",
]


def diff(a=None, b=None, notebook: str | None = None, store=None) -> Diff:
    """The diff of two versions, as `%mv_diff` reads its arguments: `diff()` the last two versions,
    `diff(A)` version A against the current state of this kernel's variables (nothing is written),
    `diff(A, B)` two versions. A and B are REFs (`vN`, `N`, a tag, a name, `latest~K`, `NB:REF`).
    Returns a Diff (`.to_dict()` follows jupyter_mv/schemas/diff.schema.json); raises UsageError for
    an unknown REF or when there are not two versions to compare."""
    if a is not None and b is None:
        return _api.diff_current(a, store=store, notebook=notebook)
    return _api.diff(a, b, notebook=notebook, store=store)


def _kernel_session():
    """Inside IPython, `import jupyter_mv as mv` behaves as if the extension were loaded."""
    ip = None
    if "IPython" in sys.modules:  # only then can a shell be running; magics is the IPython adapter
        from .magics import running_shell

        ip = running_shell()
    if ip is not None:
        from .magics import ensure_loaded

        sess = ensure_loaded(ip)
        _install_views(ip)
        return sess
    return _api.Session()


def _install_views(ip, force: bool = False) -> None:
    """The package root wires the adapters together (they never import each other): in a kernel,
    what the magics display (HistoryTable, Diff) is shown by the widgets. A terminal keeps the text."""
    if not force and getattr(ip, "kernel", None) is None:
        return
    try:
        from .widgets import install
    except ImportError:  # anywidget missing: the text/HTML renderings still work
        return
    install(ip)


def history_widget(n: int | None = None, all: bool = False):
    """The version history browser of this notebook (every notebook with all=True)."""
    from .widgets import history_widget as make

    return make(n=n, all=all)


_api._session_factory = _kernel_session


def load_ipython_extension(ipython) -> None:
    from .magics import load

    load(ipython)
    _install_views(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload

    unload(ipython)


def _register_in_running_shell() -> None:
    """`import jupyter_mv as mv` inside IPython (a kernel or the terminal) registers the %mv_*
    magics and the cell hooks, exactly as `%load_ext jupyter_mv` does, so the README's two ways in
    are the same. Outside IPython (the CLI, the server, a worker process) nothing happens. The
    extension is not marked loaded, so a later `%load_ext jupyter_mv` stays silent."""
    if "IPython" not in sys.modules:  # no shell can be running without IPython imported
        return
    try:
        from .magics import running_shell

        ip = running_shell()
        if ip is not None:
            _kernel_session()
    except Exception as e:  # an import must not fail because of the shell; the magics say how to load
        import warnings

        warnings.warn(f"jupyter_mv: could not register the %mv_* magics ({type(e).__name__}: {e}); "
                      "run %load_ext jupyter_mv", stacklevel=2)


_register_in_running_shell()


def _jupyter_server_extension_points():
    """The jupyter_server extension lives in jupyter_mv.server (imported only by the server)."""
    return [{"module": "jupyter_mv.server"}]
