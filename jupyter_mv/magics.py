"""IPython adapter: the %mv_* line magics and the kernel-side hooks that record executed cells and
their outputs. The only module that imports IPython. Errors become one-line UsageErrors."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import threading

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display, publish_display_data

from . import api, capture
from .errors import MVError
from .model import human_bytes
from .render import HistoryTable, VersionDetails

_STATE_ATTR = "_jupyter_mv_session"


# -- argument parsing ----------------------------------------------------------------------------
class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises one-line UsageErrors instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog}? for usage)")

    def exit(self, status=0, message=None):
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()

    def print_help(self, file=None):
        print(self.format_help(), file=file or sys.stdout)


def _parser(prog: str, description: str) -> _Parser:
    return _Parser(prog=prog, description=description, add_help=True)


def _split(line: str, prog: str) -> list[str]:
    try:
        return shlex.split(line, posix=True)
    except ValueError as e:
        raise UsageError(f"{prog}: cannot parse arguments ({e}); check the quotes") from None


def _magic(parser: _Parser):
    """Parse the line with `parser`, translate jupyter_mv errors, attach the help as docstring."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, line=""):
            try:
                args = parser.parse_args(_split(line, parser.prog))
            except _HelpShown:
                return None
            try:
                return fn(self, args)
            except MVError as e:
                raise UsageError(f"{parser.prog}: {e}") from None
            except UsageError:
                raise
            except KeyboardInterrupt:
                raise
            except Exception as e:  # a bug of ours: still one line, with a way to see more
                if os.environ.get("JUPYTER_MV_DEBUG"):
                    raise
                raise UsageError(f"{parser.prog}: internal error {type(e).__name__}: {e} "
                                 "(set JUPYTER_MV_DEBUG=1 for the traceback and please report it)") from None

        wrapper.__doc__ = parser.format_help()
        wrapper.parser = parser
        return wrapper

    return deco


P_SNAPSHOT = _parser("%mv_snapshot", "Take a new version of this notebook's state. With no VAR, every storable "
                     "user variable; unstorable ones are skipped with a warning naming them.")
P_SNAPSHOT.add_argument("vars", nargs="*", metavar="VAR", help="variables to store (default: all storable)")
P_SNAPSHOT.add_argument("-m", "--message", default="", help="what changed")
P_SNAPSHOT.add_argument("-n", "--name", default="", help="a name for the version (usable as REF)")
P_SNAPSHOT.add_argument("-t", "--tag", action="append", default=[], help="tag (repeatable; usable as REF)")
P_SNAPSHOT.add_argument("--params", metavar="EXPR", help="Python expression giving a dict of params")
P_SNAPSHOT.add_argument("--metrics", metavar="EXPR", help="Python expression giving a dict of numbers")

P_LOG = _parser("%mv_log", "Show the version history of this notebook, newest first.")
P_LOG.add_argument("-n", type=int, default=None, metavar="N", help="only the last N versions")
P_LOG.add_argument("--all", action="store_true", help="every notebook in the store")
P_LOG.add_argument("--no-auto", action="store_true", help="hide automatic (per-cell) versions")

P_AUTO = _parser("%mv_auto", "Snapshot automatically after every executed cell (only changed variables are "
                 "written; cells that change no variable make no version).")
P_AUTO.add_argument("state", choices=["on", "off"], nargs="?", help="turn automatic snapshots on or off")
P_AUTO.add_argument("--keep", type=int, default=None, metavar="N",
                    help="keep only the last N automatic versions (tagged, named and manual ones always stay)")

P_DIFF = _parser("%mv_diff", "Compare two versions (default: the last two; with one REF, it against the latest).")
P_DIFF.add_argument("a", nargs="?", metavar="A")
P_DIFF.add_argument("b", nargs="?", metavar="B")

P_RESTORE = _parser("%mv_restore", "Put a version's variables back into the namespace. REF is vN, N, a tag, a "
                    "version name or latest. --outputs alone re-displays the version's cell outputs.")
P_RESTORE.add_argument("ref", metavar="REF")
P_RESTORE.add_argument("vars", nargs="*", metavar="VAR", help="variables to restore (default: all)")
P_RESTORE.add_argument("--prefix", default="", help="restore VAR as PREFIX+VAR beside the current one")
P_RESTORE.add_argument("--outputs", action="store_true", help="re-display the outputs of the version's cells")
P_RESTORE.add_argument("--trust", action="store_true", help="allow unpickling data of an imported version")

P_TAG = _parser("%mv_tag", "Tag a version (a tag names one version per notebook; tagging again moves it).")
P_TAG.add_argument("ref", metavar="REF")
P_TAG.add_argument("tag", metavar="TAG")
P_TAG.add_argument("--remove", action="store_true", help="remove the tag instead")

P_SHOW = _parser("%mv_show", "Show one version: variables, params, metrics, tags, cells, environment.")
P_SHOW.add_argument("ref", metavar="REF", nargs="?", default="latest")

P_EXPORT = _parser("%mv_export", "Write version REF as one bundle file (.mvz): the notebook at that version, its "
                   "variables, params, metrics, tags and environment, with a checksum of every member.")
P_EXPORT.add_argument("ref", metavar="REF", help="vN, N, a tag, a version name or latest")
P_EXPORT.add_argument("path", metavar="PATH", help="the bundle file to write (e.g. baseline.mvz)")

P_IMPORT = _parser("%mv_import", "Add the version in a bundle (.mvz) to this store, under the notebook it was "
                   "taken in. Everything is checked first; nothing is unpickled. Restoring its pickle-based "
                   "variables later needs %mv_restore REF --trust.")
P_IMPORT.add_argument("path", metavar="PATH", help="the bundle file to import")


# -- the magics ----------------------------------------------------------------------------------
@magics_class
class MVMagics(Magics):
    def _eval_dict(self, expr: str | None, what: str) -> dict | None:
        if expr is None:
            return None
        try:
            value = eval(expr, self.shell.user_ns)  # noqa: S307 - the user's own expression, in their namespace
        except Exception as e:
            raise UsageError(f"%mv_snapshot: {what} {expr!r} failed: {type(e).__name__}: {e}") from None
        if not isinstance(value, dict):
            raise UsageError(f"%mv_snapshot: {what} must evaluate to a dict, got {type(value).__name__}")
        return value

    @line_magic
    @_magic(P_SNAPSHOT)
    def mv_snapshot(self, args):
        params = self._eval_dict(args.params, "--params")
        metrics = self._eval_dict(args.metrics, "--metrics")
        result = api.take_snapshot(args.vars, message=args.message, name=args.name, tags=args.tag,
                                   params=params, metrics=metrics)
        for sk in result.skipped:
            print(f"jupyter_mv warning: skipped {sk.name!r}: {sk.reason}", file=sys.stderr)
        print(result.summary_line())

    @line_magic
    @_magic(P_LOG)
    def mv_log(self, args):
        if args.n is not None and args.n < 1:
            raise UsageError("%mv_log: -n must be at least 1")
        display(HistoryTable(api.versions(all=args.all, auto=not args.no_auto), args.n, args.all))

    @line_magic
    @_magic(P_AUTO)
    def mv_auto(self, args):
        s = api.session()
        if args.state is None:
            print(f"automatic snapshots are {'on' if s.auto_on else 'off'}"
                  + (f" (keeping the last {s.auto_keep})" if s.auto_on and s.auto_keep else ""))
            return
        api.auto(args.state == "on", keep=args.keep)
        print(f"automatic snapshots {args.state}" + (f", keeping the last {args.keep}" if args.keep else ""))

    @line_magic
    @_magic(P_DIFF)
    def mv_diff(self, args):
        display(api.diff(args.a, args.b))

    @line_magic
    @_magic(P_RESTORE)
    def mv_restore(self, args):
        v = api.resolve(args.ref)
        if args.outputs:
            _redisplay(api.outputs(v))
            if not args.vars:
                return
        names = api.restore(v, args.vars or None, prefix=args.prefix, trust=args.trust)
        print(f"restored {', '.join(names) if names else 'nothing'} from {v.label}")

    @line_magic
    @_magic(P_TAG)
    def mv_tag(self, args):
        v = api.tag(args.ref, args.tag, remove=args.remove)
        print(f"{v.label}  tags: {', '.join(v.tags) or '(none)'}")

    @line_magic
    @_magic(P_SHOW)
    def mv_show(self, args):
        display(VersionDetails(api.show(args.ref)))

    @line_magic
    @_magic(P_EXPORT)
    def mv_export(self, args):
        v = api.resolve(args.ref)
        path = api.export(v, args.path)
        print(f"exported {v.label} of {v.notebook} to {path} ({human_bytes(os.path.getsize(path))})")

    @line_magic
    @_magic(P_IMPORT)
    def mv_import(self, args):
        print(api.import_bundle(args.path).summary_line())


def _redisplay(cells) -> None:
    shown = 0
    for c in cells:
        if not c.outputs:
            continue
        shown += 1
        label = f"[{c.execution_count}]" if c.execution_count is not None else "[ ]"
        first = (c.source.strip().splitlines() or [""])[0][:80]
        print(f"── In {label}: {first}")
        for o in c.outputs:
            t = o.get("output_type")
            if t == "stream":
                (sys.stderr if o.get("name") == "stderr" else sys.stdout).write(_text(o.get("text", "")))
            elif t in ("display_data", "execute_result"):
                publish_display_data(o.get("data", {}), o.get("metadata") or {})
            elif t == "error":
                print("\n".join(o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"]), file=sys.stderr)
        sys.stdout.flush()
    if not shown:
        print("that version recorded no cell outputs")


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x)


# -- kernel-side recording of cells and outputs --------------------------------------------------
def _msg_id(parent) -> str | None:
    if not isinstance(parent, dict):
        return None
    header = parent.get("header", parent)
    return header.get("msg_id") if isinstance(header, dict) else None


def _to_output(msg_type: str, content: dict) -> dict | None:
    if msg_type == "stream":
        return {"output_type": "stream", "name": content.get("name", "stdout"), "text": content.get("text", "")}
    if msg_type == "display_data":
        return {"output_type": "display_data", "data": content.get("data", {}),
                "metadata": content.get("metadata") or {}}
    if msg_type == "execute_result":
        return {"output_type": "execute_result", "data": content.get("data", {}),
                "metadata": content.get("metadata") or {}, "execution_count": content.get("execution_count")}
    if msg_type == "error":
        return {"output_type": "error", "ename": content.get("ename", ""), "evalue": content.get("evalue", ""),
                "traceback": content.get("traceback", [])}
    return None


class Recorder:
    """Hooks that feed the session's CellLog, in a kernel (iopub messages) or plain IPython."""

    def __init__(self, shell, log: capture.CellLog):
        self.shell = shell
        self.log = log
        self.lock = threading.Lock()
        self.kernel_session = None
        self.session = None  # the api.Session, set once loaded
        self._orig_send = None
        self._orig_publish = None

    def install(self):
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        kernel = getattr(self.shell, "kernel", None)
        sess = getattr(kernel, "session", None)
        if sess is not None and hasattr(sess, "send"):
            self.kernel_session = sess
            self._orig_send = sess.send
            sess.send = self._send
        else:
            pub = self.shell.display_pub
            self._orig_publish = pub.publish
            pub.publish = self._publish

    def uninstall(self):
        for name, fn in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(name, fn)
            except ValueError:
                pass
        if self.kernel_session is not None:
            self.kernel_session.send = self._orig_send
        if self._orig_publish is not None:
            self.shell.display_pub.publish = self._orig_publish

    def _current_msg_id(self):
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None:
            return None
        try:
            return _msg_id(kernel.get_parent("shell"))
        except Exception:
            return None

    def _count_of_running_cell(self, info) -> int | None:
        """The count this cell gets: IPython 9 has already incremented execution_count here, older
        versions had not, but the input history always holds exactly the cells before it."""
        if not getattr(info, "store_history", True):
            return None
        try:
            return len(self.shell.history_manager.input_hist_raw)
        except Exception:
            return self.shell.execution_count

    def pre_run_cell(self, info):
        with self.lock:
            self.log.start(info.raw_cell, self._count_of_running_cell(info), getattr(info, "cell_id", None),
                           self._current_msg_id())

    def post_run_cell(self, result):
        with self.lock:
            self.log.finish(result.execution_count if result.info.store_history else None)
        if self.kernel_session is None:  # the kernel path saw every output as a message
            self._record_result(result)
        if self.session is not None and self.session.auto_on and not result.info.silent:
            self._auto(result)

    def _auto(self, result):
        source = result.info.raw_cell or ""
        lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if not lines or all(ln.startswith(("%mv_", "mv.")) for ln in lines):
            return  # a cell that only drives jupyter_mv changes no state worth a version
        try:
            res = api.auto_snapshot(source, result.execution_count)
        except MVError as e:
            print(f"jupyter_mv auto-snapshot failed: {e}", file=sys.stderr)
            return
        except Exception as e:  # never break the user's cell
            print(f"jupyter_mv auto-snapshot failed: {type(e).__name__}: {e}", file=sys.stderr)
            return
        for sk in res.skipped:
            print(f"jupyter_mv warning: auto-snapshots skip {sk.name!r}: {sk.reason}", file=sys.stderr)

    def _record_result(self, result):
        with self.lock:
            if result.result is not None and not result.info.silent:
                try:
                    data, md = self.shell.display_formatter.format(result.result)
                    self.log.add({"output_type": "execute_result", "data": data, "metadata": md,
                                  "execution_count": result.execution_count})
                except Exception:
                    pass
            err = result.error_in_exec or result.error_before_exec
            if err is not None:
                self.log.add({"output_type": "error", "ename": type(err).__name__, "evalue": str(err),
                              "traceback": []})

    def _publish(self, data, metadata=None, *args, **kwargs):
        try:
            if not kwargs.get("update"):
                with self.lock:
                    self.log.add({"output_type": "display_data", "data": data, "metadata": metadata or {}})
        except Exception:
            pass
        return self._orig_publish(data, metadata, *args, **kwargs)

    def _send(self, *args, **kwargs):
        try:
            self._record(args, kwargs)
        except Exception:
            pass
        return self._orig_send(*args, **kwargs)

    def _record(self, args, kwargs):
        msg = args[1] if len(args) > 1 else kwargs.get("msg_or_type")
        if isinstance(msg, dict):
            msg_type = msg.get("header", {}).get("msg_type") or msg.get("msg_type")
            content = msg.get("content") or {}
            parent = msg.get("parent_header")
        else:
            msg_type = msg
            content = args[2] if len(args) > 2 else kwargs.get("content") or {}
            parent = args[3] if len(args) > 3 else kwargs.get("parent")
        if msg_type not in ("stream", "display_data", "execute_result", "error", "clear_output"):
            return
        mid = _msg_id(parent)
        with self.lock:
            if msg_type == "clear_output":
                self.log.clear(mid)
                return
            out = _to_output(msg_type, content)
            if out is not None:
                self.log.add(out, mid)


# -- loading ------------------------------------------------------------------------------------
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
    setattr(ip, _STATE_ATTR, sess)
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
