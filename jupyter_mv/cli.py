"""The `jupyter-mv` command (also `jupyter mv`). Errors: a one-line message and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from . import __version__, api, config, credentials, jsondata, redaction
from . import args as shared_args
from .errors import EXIT_DAMAGED, EXIT_ERROR, EXIT_USAGE, MVError, not_utf8
from .model import human_bytes
from .render import version_text


def _store(args):
    from .store import Store, default_root

    mode = getattr(args, "store_mode", "open")  # import creates the store; reproduce needs none
    if mode == "none":
        return None
    given = args.store or config.current().store  # the CLI loads no Jupyter config: $JUPYTER_MV_STORE
    root = Path(given).expanduser() if given else default_root()
    if not (root / "store.db").exists() and (
            (root / ".jupyter_mv" / "store.db").exists()
            # import creates a store: in a folder that holds other things (the notebook's), beside them
            or (mode == "create" and root.name != ".jupyter_mv" and root.is_dir() and any(root.iterdir()))):
        root = root / ".jupyter_mv"  # the folder holding the store (the notebook's folder) names it too
    if mode == "open" and not (root / "store.db").exists():
        if args.store:
            raise MVError(f"no jupyter_mv store at {root}: --store wants the .jupyter_mv folder (or the folder "
                          "holding it, usually the notebook's); a snapshot in a notebook creates it")
        where = "$JUPYTER_MV_STORE" if given else "this directory"
        raise MVError(f"no jupyter_mv store in {where} ({root}); run in the notebook's folder or pass "
                      "--store FOLDER (the .jupyter_mv folder or the one holding it)")
    return Store(root, create=mode == "create")


def _qualified(st, ref) -> bool:
    """True when REF is NB:REF naming a notebook of the store (no --notebook needed then)."""
    return ref is not None and st.split_ref(str(ref)) is not None


def _notebook(args, st, first_ref=None) -> str | None:
    """The notebook unqualified REFs belong to: --notebook (the recorded path or a unique tail of it),
    else the store's only notebook; None when the first REF names its notebook itself (NB:REF)."""
    if args.notebook:
        return api.find_notebook(args.notebook, st)
    if _qualified(st, first_ref):
        return None
    nbs = st.notebooks()
    if len(nbs) == 1:
        return nbs[0]
    if not nbs:
        raise MVError(f"the store at {st.root} has no versions yet")
    # `log` takes no REF: its ways out are --notebook and --all
    how = "or list them all with --all" if getattr(args, "all", None) is not None else "or write the ref as NB:REF"
    raise MVError(f"the store holds {len(nbs)} notebooks ({', '.join(nbs[:5])}); choose one with --notebook NB {how}")


def cmd_log(args, st):
    vs = st.versions(None if args.all else _notebook(args, st))
    if args.no_auto:
        vs = [v for v in vs if v.kind != "auto"]
    vs = [credentials.mask_version(v) for v in vs]  # shown: credentials masked
    if args.json:
        print(jsondata.dumps([v.to_dict() for v in vs], indent=1))
        return 0
    if not vs:
        print("no versions")
        return 0
    for v in reversed(vs[-args.n:] if args.n else vs):
        bits = [v.label.ljust(5), v.created[:19].replace("T", " ")]
        if args.all:
            bits.append(v.notebook)
        bits.append(f"{len(v.variables)} vars {human_bytes(v.nbytes)}")
        if v.tags:
            bits.append("[" + ", ".join(v.tags) + "]")
        if v.name:
            bits.append(v.name)
        if v.message:
            bits.append(v.message)
        if v.metrics:
            bits.append(" ".join(f"{k}={jsondata.number_text(val)}" for k, val in v.metrics.items()))
        if v.author:  # made elsewhere: pulled from a remote
            bits.append(f"(by {v.author})")
        print("  ".join(bits))
    return 0


def cmd_show(args, st):
    info = api.show(args.ref, notebook=_notebook(args, st, args.ref), store=st)
    if args.json:
        print(jsondata.dumps(info, indent=1))
        return 0
    print(version_text(info))
    return 0


def cmd_diff(args, st):
    nb = _notebook(args, st, args.a)
    va = api.resolve(args.a, nb, st)
    # B unqualified: in A's notebook when A named one (NB:REF), else in --notebook / the only one
    vb = api.resolve(args.b if args.b is not None else "latest", nb or va.notebook, st)
    if va.id == vb.id and not args.json:  # an empty diff would read as "nothing changed"
        b = args.b if args.b is not None else "latest"
        print(f"{args.a} and {b} are the same version ({va.notebook}:{va.label}): nothing to compare")
        return 0
    d = api.diff(va, vb, notebook=va.notebook, store=st)
    print(jsondata.dumps(d.to_dict(), indent=1) if args.json else str(d))
    return 0


def cmd_verify(args, st):
    problems = st.verify()
    if args.json:
        print(jsondata.dumps(problems, indent=1))
    else:
        for p in problems:
            if p["version"] is None:
                print(f"DAMAGED  {p['problem']}")
            else:
                print(f"DAMAGED  {p['notebook']} {p['version']} variable {p['variable']!r}: blob {p['blob'][:12]} "
                      f"{p['problem']}")
        try:
            n = len(st.versions())
        except MVError:  # the database itself is damaged: its problem line above says so
            n = None
        if any(p["version"] is None for p in problems):
            # the metadata is damaged: which versions it hits is unknown, "the others" promise nothing
            print(f"the store database {st.root / 'store.db'} is damaged (see the DAMAGED line): restore it from "
                  "a backup, or recover what SQLite can with `sqlite3 store.db .recover | sqlite3 recovered.db`",
                  file=sys.stderr)
        elif problems:
            bad = {(p["notebook"], p["version"]) for p in problems if p["version"]}
            print(f"{len(bad)} of {n} versions damaged; the others restore normally", file=sys.stderr)
        else:
            print(f"ok: {n} versions, every blob intact")
    return EXIT_DAMAGED if problems else 0


def cmd_gc(args, st):
    if args.keep_auto is not None:
        if args.keep_auto < 0:
            raise MVError("--keep-auto must be 0 or more")
        dropped = sum(api.apply_retention(st, nb, args.keep_auto) for nb in st.notebooks())
        print(f"dropped {dropped} automatic version{'s' if dropped != 1 else ''} beyond the last {args.keep_auto}")
    files, freed = st.gc()
    print(f"removed {files} unreferenced blob file{'s' if files != 1 else ''} ({human_bytes(freed)})")
    return 0


def cmd_export(args, st):
    v = api.resolve(args.ref, _notebook(args, st, args.ref), st)
    with _credential_warnings(args):
        path = api.export(v, args.path, store=st, include_secrets=args.include_secrets)
    print(f"exported {v.label} of {v.notebook} to {path} ({human_bytes(os.path.getsize(path))})")
    return 0


def cmd_import(args, st):
    result = api.import_bundle(args.path, store=st)
    print(result.summary_line())
    v = result.version
    ref = shlex.quote(f"{v.notebook}:{v.label}")
    var = next((x.name for x in sorted(st.variables(v), key=lambda x: -x.nbytes) if x.safe), None)
    print(f"its ref: {ref} (jupyter-mv show {ref}; in a notebook: %mv_restore {ref}{' ' + var if var else ''})")
    return 0


def cmd_reproduce(args, st):
    from . import reproduce

    if args.report:
        _check_report_path(Path(args.report).expanduser())  # before the run, not after minutes of it
    result = reproduce.reproduce(args.bundle, kernel=args.kernel, rtol=args.rtol, timeout=args.timeout)
    print(result.text())
    if args.report:
        result.write_html(args.report)
        print(f"report written to {args.report}")
    return 0 if result.ok else EXIT_ERROR


def _check_report_path(path: Path) -> None:
    """Refuse a --report path whose writing would destroy data: an existing file that is not an HTML page
    (`--report analysis.ipynb`), or one inside a store (.jupyter_mv/)."""
    target = path.resolve()
    if ".jupyter_mv" in target.parts:
        raise MVError(f"--report {path} is inside a jupyter_mv store; writing there would damage it: give a "
                      "path outside it, such as report.html")
    if target.is_dir():
        raise MVError(f"--report {path} is a directory; give a file name such as {path / 'report.html'}")
    if target.exists():
        try:
            with open(target, "rb") as f:
                head = f.read(64).lstrip().lower()
        except OSError as e:
            raise MVError(f"--report {path} cannot be read ({e.strerror or e}); give another file name") from None
        if not head.startswith((b"<!doctype html", b"<html")):
            raise MVError(f"--report {path} exists and is not an HTML report; nothing was run: choose another "
                          "file name (such as report.html) or remove it first")


def cmd_mlflow_push(args, st):
    v = api.resolve(args.ref, _notebook(args, st, args.ref), st)
    with _credential_warnings(args):
        info = api.to_mlflow(v, tracking_uri=args.tracking_uri, experiment=args.experiment, register=args.register,
                             variable=args.variable, trust=args.trust, store=st, include_secrets=args.include_secrets)
    print(f"logged {v.label} of {v.notebook} as MLflow run {info['run_id']} (experiment {info['experiment']!r})")
    if info.get("model_uri"):
        print(f"model ({info['flavor']}): {info['model_uri']}")
    if info.get("registered_version"):
        print(f"registered {info['registered_name']!r} version {info['registered_version']}")
    if info.get("note"):
        print(f"note: {info['note']}")
    for p in info.get("prompts") or []:
        how = "unchanged since" if p.get("unchanged") else "registered"
        print(f"prompt {p['variable']}: {how} {p['name']!r} version {p['version']} ({p['uri']})")
    if info.get("prompts_note"):
        print(f"note: {info['prompts_note']}")
    return 0


# -- remotes (jupyter_mv/remotes/) ------------------------------------------------------------------
def cmd_remote_list(args, st):
    """`jupyter-mv remote` alone: the store's remotes."""
    rs = api.remotes(store=st)
    if not rs:
        print("no remotes (add one with: jupyter-mv remote add NAME URL)")
    for r in rs:
        bits = [r.name, r.url]
        if r.default:
            bits.append("(default)")
        if r.conditional is False:
            bits.append("(no conditional writes: tags are not pushed)")
        print("  ".join(bits))
    return 0


def cmd_remote_add(args, st):
    r = api.remote_add(args.name, args.url, default=args.default or None, store=st)
    note = "" if r.conditional is not False else "; it ignores conditional writes, so tags will not be pushed there"
    print(f"added remote {r.name}: {r.url}{' (default)' if r.default else ''}{note}")
    return 0


def cmd_remote_remove(args, st):
    r = api.remote_remove(args.name, store=st)
    print(f"removed remote {r.name} ({r.url}); nothing on it was deleted")
    left = api.remotes(store=st)
    if r.default and len(left) == 1:  # registry.get() falls back to a lone remote: say so, never silently
        print(f"push and pull now use {left[0].name} ({left[0].url}), the only remote left")
    elif r.default and left:
        print(f"no default remote now: give --remote NAME ({', '.join(x.name for x in left)}) or make one the "
              "default with `jupyter-mv remote add NAME URL --default`")
    return 0


def cmd_remote_ls(args, st):
    from .remotes import registry

    r = registry.get(st, args.remote)
    rows = api.remote_ls(args.remote, notebook=args.notebook, store=st)
    if args.json:
        print(jsondata.dumps(rows, indent=1))
        return 0
    print(f"{r.name or r.url}: {r.url}  ({len(rows)} version{'s' if len(rows) != 1 else ''})")
    # a tag the team moved (tags/ on the remote) shows where it is now, not also where a manifest had it
    held = {(d["notebook"], t) for d in rows for t in d["remote_tags"]}
    for d in rows:
        if d["problem"]:
            print(f"{d['gid'][:12]}  DAMAGED  {d['problem']}")
            continue
        bits = [d["gid"][:12], d["notebook"], d["label"].ljust(4), d["created"][:19].replace("T", " "),
                f"by {d['author'] or '?'}", f"pushed {d['pushed_at'][:19].replace('T', ' ')}"
                + (f" by {d['pushed_by']}" if d["pushed_by"] != d["author"] else ""),
                human_bytes(d["bytes"])]
        tags = list(dict.fromkeys(d["remote_tags"] + [t for t in d["tags"] if (d["notebook"], t) not in held]))
        if tags:
            bits.append("[" + ", ".join(tags) + "]")
        if d["name"]:
            bits.append(d["name"])
        if d["message"]:
            bits.append(d["message"])
        bits.append(f"here: {d['here']}" if d["here"] else "not pulled")
        print("  ".join(bits))
    return 0


def cmd_remote_gc(args, st):
    told = set()

    def progress(phase, done, total):
        if phase == "waiting" and phase not in told:  # once: pushes in progress are waited for
            told.add(phase)
            print(f"jupyter-mv remote gc: waiting for {done} push{'es' if done != 1 else ''} in progress",
                  file=sys.stderr)
    report = api.remote_gc(args.remote, grace=args.grace, dry_run=args.dry_run, progress=progress, store=st)
    print(report.summary())
    return EXIT_DAMAGED if report.missing else 0  # as verify: referenced objects are missing


def cmd_push(args, st):
    if args.all and args.refs:
        raise MVError("give REFs or --all, not both")
    nb = None if args.all else _notebook(args, st, args.refs[0] if args.refs else None)
    with _credential_warnings(args):
        result = api.push(*args.refs, notebook=nb, all=args.all, remote=args.remote,
                          include_secrets=args.include_secrets, store=st, force_tags=args.force_tags)
    for line in result.lines():
        print(line)
    return 0


def _refused_but_pulled(e) -> None:
    """A pull that refused some versions still imported others: say which (and their labels here) on
    stdout before the error line."""
    result = getattr(e, "result", None)
    if result is not None:
        for line in result.lines():
            if line not in result.failed.values():
                print(line)


def cmd_pull(args, st):
    from .errors import RemoteCorrupt

    try:
        result = api.pull(*args.refs, notebook=args.notebook, remote=args.remote, store=st)
    except RemoteCorrupt as e:
        _refused_but_pulled(e)
        raise
    for line in result.lines():
        print(line)
    return 0


def cmd_clone(args, st):
    from .errors import RemoteCorrupt

    try:
        result = api.clone(args.url, args.directory)
    except RemoteCorrupt as e:
        _refused_but_pulled(e)
        print(f"cloned into {Path(args.directory) / '.jupyter_mv'} (default remote: origin), without the "
              "versions refused")
        raise
    for line in result.lines():
        print(line)
    print(f"cloned into {Path(args.directory) / '.jupyter_mv'} (default remote: origin)")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _credential_warnings(args):
    """CredentialsWithheld warnings as one line each on stderr."""
    return redaction.reported(lambda m: print(f"jupyter-mv {args.command}: warning: {m}", file=sys.stderr))


# the CLI's own options, not arguments of its commands (those are defined in args.py, shared with the
# magics): where the store is, and output as JSON. tests/test_args.py allows the CLI only these beyond
# what a magic of the same command takes.
OWN_OPTIONS = ("--store", "--json")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jupyter-mv", description="Notebook-native model versioning: inspect and "
                                "maintain a jupyter_mv store (.jupyter_mv/ beside the notebook).")
    p.add_argument("--version", action="version", version=f"jupyter_mv {__version__}")
    p.add_argument("--store", help="the store: its .jupyter_mv folder or the folder holding it "
                   "(default: $JUPYTER_MV_STORE or ./.jupyter_mv)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(parent, name, fn, store_help="the store: its .jupyter_mv folder or the folder holding it"):
        """Subcommand `name` of args.COMMANDS (its last word under `parent`), running `fn(args, store)`."""
        command = shared_args.COMMANDS[name]
        sp = parent.add_parser(name.split()[-1], help=command.cli_summary or command.cli, description=command.cli)
        sp.set_defaults(fn=fn)
        sp.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
        command.add_args(sp, shared_args.CLI)
        return sp

    # the arguments are args.py's; after them each command's OWN_OPTIONS and how it finds its store
    add(sub, "log", cmd_log).add_argument("--json", action="store_true", help="machine-readable output")
    add(sub, "show", cmd_show).add_argument("--json", action="store_true")
    add(sub, "diff", cmd_diff).add_argument("--json", action="store_true",
                                            help="the Diff as JSON (schemas/diff.schema.json)")
    add(sub, "verify", cmd_verify).add_argument("--json", action="store_true")
    add(sub, "gc", cmd_gc)
    add(sub, "export", cmd_export)
    add(sub, "import", cmd_import).set_defaults(store_mode="create")
    add(sub, "reproduce", cmd_reproduce).set_defaults(store_mode="none")
    mp = sub.add_parser("mlflow", help="bridge to MLflow (needs the mlflow extra)",
                        description="bridge to MLflow (needs the mlflow extra: pip install 'jupyter_mv[mlflow]')")
    msub = mp.add_subparsers(dest="mlflow_command", metavar="ACTION", required=True)
    add(msub, "mlflow push", cmd_mlflow_push, store_help="the store directory")
    add(sub, "push", cmd_push)
    add(sub, "pull", cmd_pull).set_defaults(store_mode="create")
    add(sub, "clone", cmd_clone).set_defaults(store_mode="none")
    rp = sub.add_parser("remote", help="the store's object-storage remotes (alone: list them)",
                        description="the store's object-storage remotes: add, remove, ls, gc (alone: list them)")
    rp.set_defaults(fn=cmd_remote_list)
    rp.add_argument("--store", default=argparse.SUPPRESS, help="the store: its .jupyter_mv folder or the folder holding it")
    rsub = rp.add_subparsers(dest="remote_command", metavar="ACTION")
    add(rsub, "remote add", cmd_remote_add).set_defaults(store_mode="create")
    add(rsub, "remote remove", cmd_remote_remove)
    add(rsub, "remote ls", cmd_remote_ls).add_argument("--json", action="store_true", help="machine-readable output")
    add(rsub, "remote gc", cmd_remote_gc)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USAGE
    bad = _not_utf8_argument(args)
    if bad:
        print(f"jupyter-mv {args.command}: {bad}", file=sys.stderr)
        return EXIT_USAGE
    try:
        try:
            st = _store(args)
            try:
                return args.fn(args, st)
            finally:
                if st is not None:
                    st.close()
        except (Exception, KeyboardInterrupt) as e:
            answer = _error_answer(args.command, e)
            if answer is None:
                raise
            line, code = answer
            if line:
                print(line, file=sys.stderr)
            return code
    finally:
        if argv is None:  # the program itself, not an in-process caller's main([...])
            _done_with_ctrl_c()


def _done_with_ctrl_c() -> None:
    """The command is over (done, or its error line printed): a Ctrl-C from now on would only interrupt
    the interpreter's shutdown, printing a raw KeyboardInterrupt traceback from logging's atexit or
    dying by the signal (exit -2) after a push, pull or clone had succeeded. It is ignored instead."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# arguments that are file names or URLs: bytes that are not UTF-8 are legal there (POSIX file names)
_PATH_ARGS = {"path", "directory", "bundle", "report", "store", "url"}


def _not_utf8_argument(args) -> str | None:
    """The one-line refusal of a text argument (a REF, tag, notebook, remote name...) holding bytes that are
    not UTF-8 (lone surrogates, PEP 383): they name nothing in the store and SQLite refuses to bind them."""
    for dest, value in vars(args).items():
        if dest in _PATH_ARGS:
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and any("\udc80" <= c <= "\udcff" for c in v):
                return (f"the argument {v!r} ({dest.upper()}) holds bytes that are not UTF-8; "
                        "retype it as UTF-8 text")
    return None


def _error_answer(command: str, e: BaseException) -> tuple[str | None, int] | None:
    """The CLI's one error translator: (the line `jupyter-mv COMMAND` prints on stderr, or None for
    none; its exit status) for exception `e`, or None to let `e` propagate (JUPYTER_MV_DEBUG). An
    MVError exits with its class's `exit_code` (errors.py)."""
    if isinstance(e, MVError):
        return f"jupyter-mv {command}: {e}", e.exit_code
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(e, BrokenPipeError):  # the reader left (`jupyter-mv log | head`): nothing to say
        return None, 0
    if not_utf8(e):  # a path's undecodable bytes reached text that must be UTF-8 (SQLite, JSON, a report)
        return f"jupyter-mv {command}: {not_utf8(e)}", EXIT_ERROR
    if config.current().debug:  # $JUPYTER_MV_DEBUG (config.JupyterMV.debug)
        return None
    # a bug of ours: still one line, with a way to see more
    return (f"jupyter-mv {command}: internal error {type(e).__name__}: {e} "
            "(set JUPYTER_MV_DEBUG=1 for the traceback and please report it)", EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
