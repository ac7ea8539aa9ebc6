"""The %mv_* line magics (MVMagics): each method reads its arguments through a parser of parsers.py
and calls the API; what the user sees of the result (summary lines, warnings on stderr) is here."""

from __future__ import annotations

import os
import sys
import warnings

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import display

from .. import api, codecs, loading, redaction
from ..errors import MVError, NothingToUndo, PartialRestore, StaleReference
from ..model import human_bytes
from ..render import HistoryTable, VersionDetails
from .lexing import _quote
from .outputs import _redisplay
from .parsers import (P_AUTO, P_DIFF, P_EXPORT, P_IMPORT, P_LOG, P_PULL, P_PUSH, P_RESTORE, P_SHOW, P_SNAPSHOT,
                      P_TAG, P_UNDO, _check_unquoted_words, _magic)


def restore_line(names: list, asked: list, prefix: str, ref: str, defined: list = ()) -> str:
    """`restored opt (with model, sched) from v3`: the names asked for, then the variables restored
    with them because they share objects (codecs.groups), then names defined for restored code."""
    main = [n for n in names if n[len(prefix):] in (asked or [])] if asked else list(names)
    extra = [n for n in names if n not in main]
    text = f"restored {', '.join(main) if main else 'nothing'}"
    if extra:
        text += f" (with {', '.join(extra)})"
    text += f" from {ref}"
    if defined:
        text += f"; defined {', '.join(defined)} (used by the restored code, missing here)"
    return text


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
        ns = self.shell.user_ns
        _check_unquoted_words(args._words, lambda w: w not in ns)
        params = self._eval_dict(args.params, "--params")
        metrics = self._eval_dict(args.metrics, "--metrics")
        result = api.take_snapshot(args.vars, message=args.message, name=args.name, tags=args.tag,
                                   params=params, metrics=metrics, evals=args.eval)
        for sk in result.skipped:
            print(f"jupyter_mv warning: skipped {sk.name!r}: {sk.reason}", file=sys.stderr)
        for note in result.notes:
            print(f"jupyter_mv note: {note.reason}", file=sys.stderr)
        print(result.summary_line())

    @line_magic
    @_magic(P_LOG)
    def mv_log(self, args):
        if args.n is not None and args.n < 1:
            raise UsageError("%mv_log: -n must be at least 1")
        if args.all and args.notebook:
            raise UsageError("%mv_log: give --all or --notebook, not both")
        nb = api.find_notebook(args.notebook) if args.notebook else None
        vs = api.versions(nb, all=args.all, auto=not args.no_auto)
        if not vs and not args.all:
            here = nb or api.current_notebook()
            others = [x for x in api.notebooks() if x != here]
            if others:
                print(f"no versions of {here} yet; this store holds versions of {', '.join(others[:5])}: "
                      f"%mv_log --all, or %mv_log --notebook {_quote(others[0])}")
                return  # an empty table saying "take one with %mv_snapshot" would contradict the line above
        display(HistoryTable(vs, args.n, args.all, notebook=nb))

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
        nb = api.find_notebook(args.notebook) if args.notebook else None
        if args.a is None:  # the last two versions
            vs = api.versions(nb)[-2:]
            if len(vs) < 2:
                name = nb or api.current_notebook()
                raise UsageError(f"%mv_diff: notebook {name!r} has {len(vs) or 'no'} version{'s' if len(vs) != 1 else ''}"
                                 "; a diff needs two" + (f" — %mv_diff {vs[0].label} compares it with the current state"
                                                         if vs else ": take a snapshot first"))
            display(api.diff(vs[0], vs[1], notebook=vs[0].notebook))
        elif args.b is None:  # one REF: against the kernel's current state, as the widget's Diff does
            va = api.resolve(args.a, nb)
            if va.notebook != api.current_notebook():  # the diff's labels are bare vN: say whose
                print(f"{_ref_text(va)} against the current state of {api.current_notebook()}")
            display(api.diff_current(va, notebook=va.notebook))
        else:
            va, vb = api.resolve(args.a, nb), api.resolve(args.b, nb)
            if va.id == vb.id:  # an empty diff would read as "nothing changed"
                same = (f"{args.a} against itself" if args.a == args.b
                        else f"{args.a} and {args.b} are the same version ({_ref_text(va)})")
                print(f"{same}: nothing to compare; %mv_diff {args.a} compares it with the current state")
                return
            if va.notebook != vb.notebook:
                print(f"{va.notebook}:{va.label} against {vb.notebook}:{vb.label}")
            display(api.diff(va, vb, notebook=va.notebook))

    @line_magic
    @_magic(P_RESTORE)
    def mv_restore(self, args):
        v = api.resolve(args.ref, api.find_notebook(args.notebook) if args.notebook else None)
        if args.outputs:
            _redisplay(api.outputs(v), trusted=v.is_local, label=f"{v.label} ({v.origin})")
            if not args.vars:
                return
        if args.weights_only:
            self._load_weights(v, args)
            return
        failed: dict = {}
        api.session().restore_stale = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", StaleReference)  # printed below as plain lines
                names = api.restore(v, args.vars or None, prefix=args.prefix, trust=args.trust)
        except PartialRestore as e:  # the others are back: say so, then one line per failure
            names, failed = e.restored, e.failed
        print(restore_line(names, args.vars, args.prefix, _ref_text(v), api.session().restore_defined))
        for n, why in failed.items():
            print(f"jupyter_mv warning: could not restore {n!r}: {why}", file=sys.stderr)
        for n, via in api.session().restore_stale:
            print(f"jupyter_mv warning: {n} still refers to the {via} this restore replaced, not to the restored "
                  f"one; restore {n} too (if {v.label} has it) or recreate it", file=sys.stderr)

    def _load_weights(self, v, args) -> None:
        if not args.vars:
            raise UsageError("%mv_restore: --weights-only needs the module(s) to load into, e.g. "
                             "%mv_restore v1 model --weights-only")
        if args.prefix:
            raise UsageError("%mv_restore: --weights-only loads into the live variable in place; it takes no --prefix")
        ns = self.shell.user_ns
        missing = [n for n in args.vars if n not in ns]
        if missing:
            raise UsageError(f"%mv_restore: --weights-only loads into the live {missing[0]!r}, which is not defined; "
                             "create the model (same architecture) first")
        done: list = []
        for n in args.vars:
            try:
                api.load(v, n, into=ns[n])
            except MVError as e:
                if not done:
                    raise
                # the earlier ones are in: say so on the same line, so nothing is left unclear
                raise UsageError(f"%mv_restore: loaded the weights of {', '.join(done)}, not of {n!r}: {e}") from None
            done.append(n)
        print(f"loaded the weights of {', '.join(args.vars)} from {_ref_text(v)} into the live "
              f"model{'s' if len(args.vars) > 1 else ''}")

    @line_magic
    @_magic(P_UNDO)
    def mv_undo(self, args):
        try:
            result = api.undo()
        except NothingToUndo as e:  # an answer, not a failure: one plain line
            print(e)
            return
        print(result.summary_line())
        if result.defined:
            print(f"defined {', '.join(result.defined)} (used by the restored code, missing here)")
        for n, why in result.failed.items():
            print(f"jupyter_mv warning: could not put back {n!r}: {why}", file=sys.stderr)
        for n, why in result.left.items():
            print(f"jupyter_mv warning: left {n!r} as it is: {why}", file=sys.stderr)

    @line_magic
    @_magic(P_TAG)
    def mv_tag(self, args):
        v = api.tag(args.ref, args.tag, remove=args.remove,
                    notebook=api.find_notebook(args.notebook) if args.notebook else None)
        print(f"{_ref_text(v)}  tags: {', '.join(v.tags) or '(none)'}")

    @line_magic
    @_magic(P_SHOW)
    def mv_show(self, args):
        display(VersionDetails(api.show(args.ref, notebook=api.find_notebook(args.notebook) if args.notebook else None)))

    @line_magic
    @_magic(P_EXPORT)
    def mv_export(self, args):
        v = api.resolve(args.ref, api.find_notebook(args.notebook) if args.notebook else None)
        with _credential_warnings():
            path = api.export(v, args.path, include_secrets=args.include_secrets)
        print(f"exported {v.label} of {v.notebook} to {path} ({human_bytes(os.path.getsize(path))})")

    @line_magic
    @_magic(P_IMPORT)
    def mv_import(self, args):
        result = api.import_bundle(args.path)
        print(result.summary_line())
        print(_next_step(result.version))

    @line_magic
    @_magic(P_PUSH)
    def mv_push(self, args):
        if args.all and args.refs:
            raise UsageError("%mv_push: give REFs or --all, not both")
        nb = api.find_notebook(args.notebook) if args.notebook else None
        with _credential_warnings():
            result = api.push(*args.refs, notebook=nb, all=args.all, remote=args.remote,
                              include_secrets=args.include_secrets, force_tags=args.force_tags)
        print("\n".join(result.lines()))

    @line_magic
    @_magic(P_PULL)
    def mv_pull(self, args):
        try:
            result = api.pull(*args.refs, notebook=args.notebook, remote=args.remote)
        except MVError as e:  # some versions refused, others pulled: which, and their labels here
            done = getattr(e, "result", None)
            if done is not None and done.pulled:
                print("\n".join(line for line in done.lines() if line not in done.failed.values()))
                print(_next_step(done.pulled[-1]))
            raise
        print("\n".join(result.lines()))
        if result.pulled:
            print(_next_step(result.pulled[-1]))


def _ref_text(v) -> str:
    """How to name version `v` in a magic here: `v3` in its own notebook, `NB:v3` from another one."""
    try:
        here = api.current_notebook()
    except Exception:
        here = None
    return v.label if v.notebook == here else _quote(f"{v.notebook}:{v.label}")


def _next_step(v) -> str:
    """The magic that restores a just-imported version, with the exact ref (NB:vN from another notebook)."""
    ref = _ref_text(v)
    variables = api.session().store().variables(v)
    if not variables:
        return f"see it with %mv_show {ref}"
    # the example: the largest variable that restores without --trust (the data more than a scalar);
    # a skops model is one when its audit passes (restore's own check, so the hint never says
    # --trust where none is needed)
    safe = next((x.name for x in sorted(variables, key=lambda x: -x.nbytes) if x.safe or _restores_untrusted(v, x)),
                None)
    if safe:
        return f"restore with %mv_restore {ref} {safe}   (all its variables: %mv_restore {ref}; details: %mv_show {ref})"
    return (f"restore with %mv_restore {ref} {variables[0].name} --trust   (pickle-based: only if you trust the sender; "
            f"details: %mv_show {ref})")


def _restores_untrusted(v, x) -> bool:
    """Does variable `x` of imported version `v` restore without --trust (a skops model whose audit
    passes)? Only skops models are audited here; other pickle-based codecs never do."""
    if x.codec not in codecs.estimators.NAMES:
        return False
    try:
        loading.check_trust(api.session().store(), v, [x.name], False)
    except Exception:  # Untrusted, or data the audit cannot read: not an example to suggest
        return False
    return True


def _credential_warnings():
    """CredentialsWithheld warnings as one plain line on stderr (not IPython's file:line form)."""
    return redaction.reported(lambda m: print(f"jupyter_mv warning: {m}", file=sys.stderr))

