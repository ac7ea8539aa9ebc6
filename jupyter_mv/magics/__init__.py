"""IPython adapter: the %mv_* line magics and the kernel-side hooks that record executed cells and
their outputs. The only package that imports IPython. Errors become one-line UsageErrors.

One module a concept:
    lexing.py    a magic's line as words: shell-style quoting, comments, `$name` expansion
    parsers.py   one argparse parser a magic (arguments from jupyter_mv/args.py) and `_magic`, the
                 decorator that reads a line with one
    errors.py    the one translator of exceptions into the UsageError line
    commands.py  the MVMagics class: one method a magic
    outputs.py   re-displaying a version's recorded cell outputs
    recorder.py  the hooks that record executed cells and their outputs (and run auto-snapshots)
    __init__.py  loading and unloading the extension in a shell; re-exports the names above
"""

from __future__ import annotations

from IPython.core.error import UsageError

from .. import api, capture, config
# re-exported: the names of the former magics.py module, so `magics.X` keeps working
from .commands import (MVMagics, _credential_warnings, _next_step, _ref_text, _restores_untrusted,  # noqa: F401
                       restore_line)
from .errors import usage_error  # noqa: F401
from .lexing import _code_part, _expand, _lex, _quote, _scan, _split  # noqa: F401
from .outputs import _WIDGET_VIEW, _redisplay, _text  # noqa: F401
from .parsers import (_MULTIWORD, _PLACEHOLDER, P_AUTO, P_DIFF, P_EXPORT, P_IMPORT, P_LOG,  # noqa: F401
                      P_RESTORE, P_SHOW, P_SNAPSHOT, P_TAG, _check_unquoted_words, _HelpShown, _magic,
                      _parse, _Parser, command_parser)
from .recorder import Recorder, _msg_id, _to_output  # noqa: F401

__all__ = ["MVMagics", "Recorder", "command_parser", "ensure_loaded", "load", "restore_line", "running_shell",
           "unload"]

_STATE_ATTR = "_jupyter_mv_session"


def running_shell():
    """The IPython shell this code runs in, or None."""
    from IPython import get_ipython

    return get_ipython()


def ensure_loaded(ip) -> api.Session:
    """Create the kernel's session, hooks and magics once; return the session."""
    sess = getattr(ip, _STATE_ATTR, None)
    if sess is not None:
        return sess
    log = capture.CellLog()
    sess = api.Session(namespace=ip.user_ns, cell_log=log, hidden=set(getattr(ip, "user_ns_hidden", {})))
    recorder = Recorder(ip, log)
    recorder.session = sess
    recorder.install()
    sess.recorder = recorder
    sess.in_cell = False  # until the next cell's pre_run_cell: a restore from the sidebar records for undo
    setattr(ip, _STATE_ATTR, sess)
    config.register(ip)  # c.JupyterMV.* from ipython_config.py; %config JupyterMV.x = … from now on
    ip.register_magics(MVMagics)
    _backfill(ip, log, recorder)
    api.set_session(sess)
    api.warm_up()
    return sess


def _backfill(ip, log: capture.CellLog, recorder: Recorder) -> None:
    """Cells run before the extension was loaded (and the loading cell itself, whose pre_run_cell
    came too early) from IPython's input history, with their execute_results from Out; their other
    outputs were never seen."""
    try:
        sources = list(ip.history_manager.input_hist_raw)
        outs = dict(ip.user_ns.get("Out") or {})
    except Exception:
        return
    last = len(sources) - 1
    for n, src in enumerate(sources[1:], start=1):
        if not src or not src.strip():
            continue
        with recorder.lock:
            log.start(src, n, None, recorder._current_msg_id() if n == last else None)
            if n in outs:
                try:
                    data, md = ip.display_formatter.format(outs[n])
                    log.add({"output_type": "execute_result", "data": data, "metadata": md, "execution_count": n})
                except Exception:
                    pass


def load(ip) -> None:
    ensure_loaded(ip)


def unload(ip) -> None:
    sess = getattr(ip, _STATE_ATTR, None)
    if sess is not None:
        sess.recorder.uninstall()
        delattr(ip, _STATE_ATTR)
        api.set_session(None)
    # IPython has no way to unregister a magic; leave ones that say how to load it again (rather
    # than magics that would quietly re-install the hooks through the API)
    line = ip.magics_manager.magics.get("line", {})
    for name in MVMagics.magics["line"]:
        if name in line:
            line[name] = _not_loaded(name)


def _not_loaded(name: str):
    def magic(line=""):
        raise UsageError(f"%{name}: jupyter_mv is not loaded in this kernel; run %load_ext jupyter_mv "
                         "(or import jupyter_mv)")

    magic.__doc__ = f"%{name} needs jupyter_mv: run %load_ext jupyter_mv first."
    return magic
