"""Kernel-side recording of executed cells and their outputs into the session's CellLog (iopub
messages in a kernel, the display publisher in plain IPython), and the auto-snapshot after each cell."""

from __future__ import annotations

import ast
import sys
import threading

from .. import api, capture
from ..errors import MVError


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


class _StopInterruptedCell(ast.NodeTransformer):
    """IPython AST transformer: a cell whose pre-cell recording (the %mv_undo journal) was interrupted with
    Ctrl-C / the kernel's interrupt runs nothing but `raise KeyboardInterrupt`. IPython catches anything a
    pre_run_cell callback raises, prints "Error in callback" with a traceback and runs the cell anyway, so
    the user's interrupt was lost (a snapshot they meant to stop went ahead). AST transformers run after
    pre_run_cell and before the cell's code."""

    def __init__(self, recorder: "Recorder"):
        self.recorder = recorder

    def visit_Module(self, node):
        if not self.recorder.interrupted:
            return node
        self.recorder.interrupted = False
        node.body = ast.parse("raise KeyboardInterrupt('interrupted while jupyter_mv recorded the variables for "
                              "%mv_undo, before the cell ran: nothing of it ran')").body
        return ast.fix_missing_locations(node)


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
        self._orig_clear = None
        self.interrupted = False  # the pre-cell recording was interrupted: the cell must not run
        self._stopper = _StopInterruptedCell(self)

    def install(self):
        self.shell.ast_transformers.append(self._stopper)
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
            self._orig_clear = pub.clear_output
            pub.clear_output = self._clear_output

    def uninstall(self):
        if self._stopper in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self._stopper)
        for name, fn in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(name, fn)
            except ValueError:
                pass
        if self.kernel_session is not None:
            self.kernel_session.send = self._orig_send
        if self._orig_publish is not None:
            self.shell.display_pub.publish = self._orig_publish
            self.shell.display_pub.clear_output = self._orig_clear

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
        count = self._count_of_running_cell(info)
        with self.lock:
            self.log.start(info.raw_cell, count, getattr(info, "cell_id", None), self._current_msg_id())
        if self.session is not None:  # the variables before this cell, for %mv_undo (never raises)
            self.session.in_cell = True
            try:
                api.undo_checkpoint(info.raw_cell or "", f"In [{count}]" if count is not None else "the cell")
            except KeyboardInterrupt:  # honoured: the cell is stopped before it runs (_StopInterruptedCell)
                self.interrupted = True
            except Exception as e:  # a bad setting (JUPYTER_MV_UNDO_DEPTH=abc): IPython would print a traceback
                self._say_once(f"jupyter_mv: %mv_undo cannot record cells: "
                               f"{e if isinstance(e, MVError) else f'{type(e).__name__}: {e}'}")

    def _say_once(self, line: str) -> None:
        """`line` on stderr, once a session (a hook runs at every cell)."""
        said = self.__dict__.setdefault("_said", set())
        if line not in said:
            said.add(line)
            print(line, file=sys.stderr)

    def post_run_cell(self, result):
        self.interrupted = False  # a cell that never reached its AST (a syntax error) must not stop the next
        if self.session is not None:
            self.session.in_cell = False
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
        except KeyboardInterrupt:  # IPython would print "Error in callback" and a traceback
            print("jupyter_mv auto-snapshot interrupted: no version of this cell's state was made (the cell "
                  "itself ran; %mv_snapshot takes one)", file=sys.stderr)
            return
        except Exception as e:  # never break the user's cell
            print(f"jupyter_mv auto-snapshot failed: {type(e).__name__}: {e}", file=sys.stderr)
            return
        for sk in res.skipped:
            print(f"jupyter_mv warning: auto-snapshots skip {sk.name!r}: {sk.reason}", file=sys.stderr)
        for note in res.notes:
            print(f"jupyter_mv note: {note.reason}", file=sys.stderr)

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
            display_id = (kwargs.get("transient") or {}).get("display_id")
            with self.lock:
                if kwargs.get("update"):  # handle.update(...): rewrites the display where it is shown
                    if display_id:
                        self.log.update_display(display_id, data, metadata or {})
                else:
                    self.log.add({"output_type": "display_data", "data": data, "metadata": metadata or {}},
                                 display_id=display_id)
        except Exception:
            pass
        return self._orig_publish(data, metadata, *args, **kwargs)

    def _clear_output(self, wait=False, *args, **kwargs):
        try:
            with self.lock:
                self.log.clear(wait=bool(wait))
        except Exception:
            pass
        return self._orig_clear(wait, *args, **kwargs)

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
        if msg_type not in ("stream", "display_data", "execute_result", "error", "clear_output",
                            "update_display_data"):
            return
        mid = _msg_id(parent)
        display_id = (content.get("transient") or {}).get("display_id")  # transient may be None
        with self.lock:
            # the frontends' output model (nbclient does the same): clear_output(wait=True) clears on
            # the next output, a display_id's update rewrites that display wherever it is shown
            if msg_type == "clear_output":
                self.log.clear(mid, wait=bool(content.get("wait")))
                return
            if msg_type == "update_display_data":
                if display_id:
                    self.log.update_display(display_id, content.get("data", {}), content.get("metadata") or {})
                return
            out = _to_output(msg_type, content)
            if out is not None:
                self.log.add(out, mid, display_id=display_id)

