"""The `jupyter-mv` command (also `jupyter mv`). Errors: a one-line message and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from . import __version__, api, credentials, jsondata, redaction
from .errors import MVError
from .model import human_bytes
from .render import version_text

EXIT_ERROR, EXIT_USAGE, EXIT_DAMAGED = 1, 2, 3


def _store(args):
    from .store import Store, default_root

    mode = getattr(args, "store_mode", "open")  # import creates the store; reproduce needs none
    if mode == "none":
        return None
    given = args.store or os.environ.get("JUPYTER_MV_STORE")
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
        n = len(st.versions())
        if problems:
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

    result = reproduce.reproduce(args.bundle, kernel=args.kernel, rtol=args.rtol, timeout=args.timeout)
    print(result.text())
    if args.report:
        result.write_html(args.report)
        print(f"report written to {args.report}")
    return 0 if result.ok else EXIT_ERROR


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
    return 0


REF_HELP = ("vN, N, a tag, a version name, latest or latest~K; NB:REF (e.g. projects/churn.ipynb:v1) names a "
            "version of notebook NB")
NB_HELP = ("the notebook whose versions the REFs name, as recorded (e.g. projects/churn.ipynb, or a unique tail "
           "such as churn.ipynb; default: the store's only notebook)")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


SECRETS_HELP = ("send variables and params holding credentials (API keys, tokens, passwords) and leave them "
                "unmasked in cell sources and outputs; by default they are withheld and named on stderr")


def _credential_warnings(args):
    """CredentialsWithheld warnings as one line each on stderr."""
    return redaction.reported(lambda m: print(f"jupyter-mv {args.command}: warning: {m}", file=sys.stderr))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jupyter-mv", description="Notebook-native model versioning: inspect and "
                                "maintain a jupyter_mv store (.jupyter_mv/ beside the notebook).")
    p.add_argument("--version", action="version", version=f"jupyter_mv {__version__}")
    p.add_argument("--store", help="the store: its .jupyter_mv folder or the folder holding it "
                   "(default: $JUPYTER_MV_STORE or ./.jupyter_mv)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        sp.add_argument("--store", default=argparse.SUPPRESS,
                        help="the store: its .jupyter_mv folder or the folder holding it")
        return sp

    sp = add("log", cmd_log, "list the versions of a notebook, newest first")
    sp.add_argument("--notebook", metavar="NB", help=NB_HELP)
    sp.add_argument("--all", action="store_true", help="every notebook")
    sp.add_argument("-n", type=int, help="only the last N versions")
    sp.add_argument("--no-auto", action="store_true", help="hide automatic (per-cell) versions")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp = add("show", cmd_show, "show one version: variables, params, metrics, cells, environment")
    sp.add_argument("ref", metavar="REF", help=REF_HELP)
    sp.add_argument("--notebook", metavar="NB", help=NB_HELP)
    sp.add_argument("--json", action="store_true")
    sp = add("diff", cmd_diff, "compare two versions")
    sp.add_argument("a", metavar="A", help=REF_HELP)
    sp.add_argument("b", metavar="B", nargs="?", help="the version to compare A with (default: latest of A's notebook)")
    sp.add_argument("--notebook", metavar="NB", help=NB_HELP)
    sp.add_argument("--json", action="store_true", help="the Diff as JSON (schemas/diff.schema.json)")
    sp = add("verify", cmd_verify, "re-hash every blob and report damage by version and variable (exit 3 if any)")
    sp.add_argument("--json", action="store_true")
    sp = add("gc", cmd_gc, "delete blob files and pack entries that no version references; rewrite packs "
                          "less than half live")
    sp.add_argument("--keep-auto", type=int, metavar="N", help="first drop all but the last N automatic versions "
                    "of each notebook (tagged, named and manual versions are always kept)")
    sp = add("export", cmd_export, "write version REF as one bundle file (.mvz) to share or reproduce")
    sp.add_argument("ref", metavar="REF", help=REF_HELP)
    sp.add_argument("path", metavar="PATH", help="the bundle file to write")
    sp.add_argument("--notebook", metavar="NB", help=NB_HELP)
    sp.add_argument("--include-secrets", action="store_true", help=SECRETS_HELP)
    sp = add("import", cmd_import, "check a bundle and add its version to the store (nothing is unpickled)")
    sp.add_argument("path", metavar="PATH", help="the bundle file (.mvz)")
    sp.set_defaults(store_mode="create")
    sp = add("reproduce", cmd_reproduce, "re-run a bundle's notebook in a fresh kernel and compare outputs, "
             "metrics and variables with the recorded ones (exit 1 on any difference)")
    sp.add_argument("bundle", metavar="BUNDLE", help="the bundle file (.mvz)")
    sp.add_argument("--kernel", metavar="NAME", help="kernel to run it in (default: this Python)")
    sp.add_argument("--rtol", type=float, default=1e-6, metavar="X",
                    help="relative tolerance for numbers in outputs, metrics and variables (default 1e-6)")
    sp.add_argument("--timeout", type=float, default=600, metavar="S", help="seconds allowed per cell (default 600)")
    sp.add_argument("--report", metavar="FILE", help="also write an HTML report")
    sp.set_defaults(store_mode="none")
    mp = sub.add_parser("mlflow", help="bridge to MLflow (needs the mlflow extra)",
                        description="bridge to MLflow (needs the mlflow extra: pip install 'jupyter_mv[mlflow]')")
    msub = mp.add_subparsers(dest="mlflow_command", metavar="ACTION", required=True)
    sp = msub.add_parser("push", help="log version REF as an MLflow run, optionally registering its model",
                         description="log version REF as an MLflow run (params, metrics, tags, notebook, "
                         "environment, model) and optionally register the model")
    sp.set_defaults(fn=cmd_mlflow_push)
    sp.add_argument("--store", default=argparse.SUPPRESS, help="the store directory")
    sp.add_argument("ref", metavar="REF", help=REF_HELP)
    sp.add_argument("--tracking-uri", required=True, metavar="URI", help="MLflow tracking server or store URI")
    sp.add_argument("--include-secrets", action="store_true", help=SECRETS_HELP)
    sp.add_argument("--experiment", metavar="NAME", help="experiment name (default: the notebook's name)")
    sp.add_argument("--register", metavar="MODEL_NAME", help="also create a Model Registry version under this name")
    sp.add_argument("--variable", metavar="NAME", help="the model variable (default: the only model-like one)")
    sp.add_argument("--notebook", metavar="NB", help=NB_HELP)
    sp.add_argument("--trust", action="store_true", help="allow unpickling a model of an imported version")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        st = _store(args)
        try:
            return args.fn(args, st)
        finally:
            if st is not None:
                st.close()
    except MVError as e:
        print(f"jupyter-mv {args.command}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug of ours: still one line, with a way to see more
        if os.environ.get("JUPYTER_MV_DEBUG"):
            raise
        print(f"jupyter-mv {args.command}: internal error {type(e).__name__}: {e} "
              "(set JUPYTER_MV_DEBUG=1 for the traceback and please report it)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
