"""The arguments of every jupyter_mv command, defined once for both adapters that parse them: the
`%mv_*` line magics (jupyter_mv/magics/) and the `jupyter-mv` CLI (cli.py). argparse only: no IPython.

The shape follows nbdime's `nbdime/args.py` (one `add_*_args(parser)` function a command, shared by its
entry points). `COMMANDS` maps a command's name to a `Command`: the function that adds its arguments to
an argparse parser, and its description in each adapter that offers it. Each adapter builds one parser a
command with its own ArgumentParser subclass (the magics raise a one-line UsageError, the CLI prints one
line and exits 2) and adds only options that are its own, not the command's (the CLI's `--store` and
`--json`). So an argument added here reaches every adapter offering the command; tests/test_args.py
checks that the commands both offer take the same options.

Wording may differ by adapter (`_by`): a magic runs in a notebook, so its REFs default to that
notebook's versions and to the kernel's state; the CLI knows only the store (its only notebook). So may
a positional's nargs where a magic has a default the CLI cannot have (`%mv_show` alone shows latest).

To add a command (remote push/pull, say): write `add_<name>_args(parser, adapter)` below, register it in
`COMMANDS` with a description for each adapter that offers it, then give it a method in
magics/commands.py (`@_magic(command_parser("<name>"))`) and/or a `cmd_<name>` in cli.py's table.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

MAGIC, CLI = "magic", "cli"
ADAPTERS = (MAGIC, CLI)


def _by(adapter: str, *, magic, cli):
    """The value for `adapter` (MAGIC or CLI): one argument, worded for where it is typed."""
    return {MAGIC: magic, CLI: cli}[adapter]


REF_HELP = {
    MAGIC: ("vN, N, a tag, a version name, latest or latest~K; NB:REF (e.g. projects/churn.ipynb:v1) names a "
            "version of another notebook in this store"),
    CLI: ("vN, N, a tag, a version name, latest or latest~K; NB:REF (e.g. projects/churn.ipynb:v1) names a "
          "version of notebook NB"),
}
NB_HELP = {
    MAGIC: ("the notebook whose versions the REFs name, as recorded in the store (e.g. projects/churn.ipynb; "
            "default: this notebook); same as writing NB:REF"),
    CLI: ("the notebook whose versions the REFs name, as recorded (e.g. projects/churn.ipynb, or a unique tail "
          "such as churn.ipynb; default: the store's only notebook)"),
}
SECRETS_HELP = {
    MAGIC: ("ship variables and params holding credentials (API keys, tokens, passwords) and leave "
            "them unmasked in cell sources and outputs; by default they are withheld and named"),
    CLI: ("send variables and params holding credentials (API keys, tokens, passwords) and leave them "
          "unmasked in cell sources and outputs; by default they are withheld and named on stderr"),
}


def whole_number(minimum: int):
    """An argparse `type`: a whole number of at least `minimum`, refused at parse time by every adapter
    alike with the bound named (a bare `type=int` let `-n -5` through: the CLI's log then printed nothing)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def non_empty(what: str):
    """An argparse `type`: text that is not empty or blank (`--tracking-uri ""` fell back to MLflow's
    default store and created mlflow.db in the working directory)."""
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} is empty; give one")
        return text
    return parse


# -- arguments several commands take --------------------------------------------------------------
def add_ref_arg(parser: argparse.ArgumentParser, adapter: str, **kwargs) -> None:
    """REF: one version (vN, N, tag, name, latest, NB:REF); `kwargs` go to add_argument (nargs, default)."""
    kwargs.setdefault("help", REF_HELP[adapter])
    parser.add_argument("ref", metavar="REF", **kwargs)


def add_notebook_arg(parser: argparse.ArgumentParser, adapter: str, help: str | None = None) -> None:
    """--notebook NB: the notebook unqualified REFs belong to."""
    parser.add_argument("--notebook", metavar="NB", help=help or NB_HELP[adapter])


def add_secrets_arg(parser: argparse.ArgumentParser, adapter: str) -> None:
    """--include-secrets: ship credentials that are withheld by default (export, MLflow push)."""
    parser.add_argument("--include-secrets", action="store_true", help=SECRETS_HELP[adapter])


# -- one function a command ---------------------------------------------------------------------
def add_snapshot_args(parser, adapter):
    parser.add_argument("vars", nargs="*", metavar="VAR", help="variables to store (default: all storable)")
    parser.add_argument("-m", "--message", default="", help='what changed (quote several words: -m "first try")')
    parser.add_argument("-n", "--name", default="", help="a name for the version, usable as REF: unique in the "
                        "notebook, not a tag, not vN, N or latest")
    parser.add_argument("-t", "--tag", action="append", default=[], help="tag (repeatable; usable as REF)")
    parser.add_argument("--params", metavar="EXPR", help="Python expression giving a dict of params (added to the "
                        "models' hyperparameters and UPPER_CASE constants; a credential value is not recorded)")
    parser.add_argument("--metrics", metavar="EXPR", help="Python expression giving a dict of numbers")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME",
                        help="an eval table (a DataFrame: one row per example, an id column or unique index, "
                             "numeric score columns): its mean scores become metrics NAME.<score> and %%mv_diff "
                             "compares it by example id; stored too when VARs are named (repeatable; tables "
                             "with an id and score-named columns, or named eval_*, are found without it)")


def add_log_args(parser, adapter):
    add_notebook_arg(parser, adapter, help=_by(adapter, magic="the history of another notebook in this store",
                                               cli=NB_HELP[CLI]))
    parser.add_argument("-n", type=whole_number(1), default=None, metavar="N", help="only the last N versions")
    parser.add_argument("--all", action="store_true",
                        help=_by(adapter, magic="every notebook in the store", cli="every notebook"))
    parser.add_argument("--no-auto", action="store_true", help="hide automatic (per-cell) versions")


def add_auto_args(parser, adapter):
    parser.add_argument("state", choices=["on", "off"], nargs="?", help="turn automatic snapshots on or off")
    parser.add_argument("--keep", type=whole_number(1), default=None, metavar="N",
                        help="keep only the last N automatic versions (tagged, named and manual ones always stay)")


def add_diff_args(parser, adapter):
    # a magic has defaults for both (the last two versions; the kernel's state); the CLI needs A
    parser.add_argument("a", nargs=_by(adapter, magic="?", cli=None), metavar="A", help=REF_HELP[adapter])
    parser.add_argument("b", nargs="?", metavar="B", help=_by(
        adapter, magic="the version to compare A with (default: the current state)",
        cli="the version to compare A with (default: latest of A's notebook)"))
    add_notebook_arg(parser, adapter)


def add_restore_args(parser, adapter):
    add_ref_arg(parser, adapter)
    parser.add_argument("vars", nargs="*", metavar="VAR",
                        help="variables to restore (default: all); each comes back with the variables it "
                             "shares objects with (an optimizer with its model), named on the summary line")
    parser.add_argument("--prefix", default="",
                        help="restore VAR (and its group) as PREFIX+VAR beside the current one")
    parser.add_argument("--outputs", action="store_true", help="re-display the outputs of the version's cells "
                        "(those of an imported or pulled version sanitized: no script runs)")
    parser.add_argument("--trust", action="store_true", help="allow unpickling data of an imported version")
    parser.add_argument("--weights-only", action="store_true",
                        help="copy the stored weights of each torch module VAR into the live VAR of the same "
                             "architecture, in place (no unpickling: no --trust needed for imported versions)")
    add_notebook_arg(parser, adapter)


def add_tag_args(parser, adapter):
    add_ref_arg(parser, adapter)
    parser.add_argument("tag", metavar="TAG", help="a word without spaces or ':', not starting with '-', that is "
                        "not vN, N, latest or another version's name")
    parser.add_argument("--remove", action="store_true", help="remove the tag instead")
    add_notebook_arg(parser, adapter)


def add_show_args(parser, adapter):
    if adapter == MAGIC:  # a notebook has a latest version to default to
        add_ref_arg(parser, adapter, nargs="?", default="latest", help=REF_HELP[MAGIC] + " (default: latest)")
    else:
        add_ref_arg(parser, adapter)
    add_notebook_arg(parser, adapter)


def add_export_args(parser, adapter):
    add_ref_arg(parser, adapter)
    parser.add_argument("path", metavar="PATH", help=_by(adapter, magic="the bundle file to write (e.g. baseline.mvz)",
                                                          cli="the bundle file to write")
                        + "; an existing bundle there is replaced, any other existing file is refused")
    add_notebook_arg(parser, adapter)
    add_secrets_arg(parser, adapter)


def add_import_args(parser, adapter):
    parser.add_argument("path", metavar="PATH",
                        help=_by(adapter, magic="the bundle file to import", cli="the bundle file (.mvz)"))


def add_undo_args(parser, adapter):
    pass  # always the last executed cell that changed a variable; repeat to walk further back


def add_verify_args(parser, adapter):
    pass  # the whole store; the CLI adds its --json


def add_gc_args(parser, adapter):
    parser.add_argument("--keep-auto", type=whole_number(0), metavar="N",
                        help="first drop all but the last N automatic versions "
                        "of each notebook (tagged, named and manual versions are always kept)")


def add_reproduce_args(parser, adapter):
    parser.add_argument("bundle", metavar="BUNDLE", help="the bundle file (.mvz)")
    parser.add_argument("--kernel", metavar="NAME", help="kernel to run it in (default: this Python)")
    parser.add_argument("--rtol", type=float, default=1e-6, metavar="X",
                        help="relative tolerance for numbers in outputs, metrics and variables (default 1e-6)")
    parser.add_argument("--timeout", type=float, default=600, metavar="S",
                        help="seconds allowed per cell (default 600)")
    parser.add_argument("--report", metavar="FILE", help="also write an HTML report")


def add_mlflow_push_args(parser, adapter):
    add_ref_arg(parser, adapter)
    parser.add_argument("--tracking-uri", required=True, metavar="URI", type=non_empty("the tracking URI"),
                        help="MLflow tracking server or store URI")
    add_secrets_arg(parser, adapter)
    parser.add_argument("--experiment", metavar="NAME", help="experiment name (default: the notebook's name)")
    parser.add_argument("--register", metavar="MODEL_NAME", help="also create a Model Registry version under this name")
    parser.add_argument("--variable", metavar="NAME", help="the model variable (default: the only model-like one)")
    add_notebook_arg(parser, adapter)
    parser.add_argument("--trust", action="store_true", help="allow unpickling a model of an imported version")


def add_remote_arg(parser: argparse.ArgumentParser, adapter: str) -> None:
    """--remote NAME: which of the store's remotes (default: its default remote)."""
    parser.add_argument("--remote", metavar="NAME", help=(
        "the remote to use, by the name `jupyter-mv remote add` gave it (default: the store's default remote)"))


def add_push_args(parser, adapter):
    parser.add_argument("refs", nargs="*", metavar="REF", help=_by(
        adapter,
        magic="versions to push (vN, N, a tag, a name, latest, NB:REF); default: every version of this notebook",
        cli="versions to push (vN, N, a tag, a name, latest, NB:REF); default: every version of the notebook"))
    add_notebook_arg(parser, adapter)
    parser.add_argument("--all", action="store_true", help="push every version of every notebook in the store")
    add_remote_arg(parser, adapter)
    add_secrets_arg(parser, adapter)
    parser.add_argument("--force-tags", action="store_true", help=(
        "move the team's tags on the remote to these versions even where your local tag was not set after "
        "you last saw the team's (by default such a tag is left, with a note: re-tag after pulling)"))


def add_pull_args(parser, adapter):
    parser.add_argument("refs", nargs="*", metavar="REF", help=(
        "versions to pull: a global id or a unique prefix of one (6+ hex digits), a tag on the remote, a "
        "version name, or a vN only one version there has; default: every version this store lacks"))
    parser.add_argument("--notebook", metavar="NB", help=(
        "only versions of this notebook, as recorded on the remote (e.g. projects/churn.ipynb, or a unique tail "
        "such as churn.ipynb); one the remote lacks is an error naming those it has"))
    add_remote_arg(parser, adapter)


def add_remote_add_args(parser, adapter):
    parser.add_argument("name", metavar="NAME", help="a short name for the remote (letters, digits, . _ -)")
    parser.add_argument("url", metavar="URL", help=(
        "s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX, file:///PATH (or a folder path), or "
        "another fsspec URL; no credentials in it: they come from AWS_* variables and ~/.aws (endpoint: "
        "AWS_ENDPOINT_URL)"))
    parser.add_argument("--default", action="store_true", help=(
        "make it the default remote of push and pull (the first remote added is the default anyway)"))


def add_remote_remove_args(parser, adapter):
    parser.add_argument("name", metavar="NAME", help="the remote to forget (nothing on the remote is deleted)")


def add_remote_ls_args(parser, adapter):
    parser.add_argument("--notebook", metavar="NB", help="only versions of this notebook, as recorded on the remote "
                        "(or a unique tail such as churn.ipynb)")
    add_remote_arg(parser, adapter)


def add_remote_gc_args(parser, adapter):
    parser.add_argument("--grace", default="24h", metavar="AGE", help=(
        "keep unreferenced objects younger than this (24h, 90m, 2d, 1w, 30s: the unit is required; 0 for none; "
        "default 24h): "
        "what someone is pushing is kept anyway, through its push lease"))
    parser.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    add_remote_arg(parser, adapter)


def add_clone_args(parser, adapter):
    parser.add_argument("url", metavar="URL", help="the remote to clone (as for `remote add`)")
    parser.add_argument("directory", metavar="DIR", help=(
        "the folder to clone into: the store goes to DIR/.jupyter_mv (the folder is created if needed)"))


# -- the table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One command: `add_args(parser, adapter)` adds its arguments; `magic` / `cli` is its description in
    that adapter (None: the adapter does not offer it); `cli_summary` its line in `jupyter-mv --help`
    when that is shorter than the description."""

    add_args: Callable[[argparse.ArgumentParser, str], None]
    magic: str | None = None
    cli: str | None = None
    cli_summary: str | None = None

    def description(self, adapter: str) -> str | None:
        return _by(adapter, magic=self.magic, cli=self.cli)


COMMANDS: dict[str, Command] = {
    "snapshot": Command(add_snapshot_args, magic=(
        "Take a new version of this notebook's state. With no VAR, every storable "
        "user variable; unstorable ones, and those holding a credential (API key, token, password), "
        "are skipped with a warning naming them: name a credential variable to store it, marked. "
        "Params recorded without asking: the models' hyperparameters and UPPER_CASE scalar constants.")),
    "log": Command(add_log_args, magic="Show the version history of this notebook, newest first.",
                   cli="list the versions of a notebook, newest first"),
    "auto": Command(add_auto_args, magic=(
        "Snapshot automatically after every executed cell (only changed variables are "
        "written; cells that change no variable make no version).")),
    "diff": Command(add_diff_args, magic=(
        "Compare two versions. No REF: the last two versions; one REF: that version "
        "against the current state of the kernel (nothing is written); two: A against B."),
        cli="compare two versions"),
    "restore": Command(add_restore_args, magic=(
        "Put a version's variables back into the namespace. REF is vN, N, a tag, a "
        "version name or latest. --outputs alone re-displays the version's cell outputs.")),
    "tag": Command(add_tag_args, magic=(
        "Tag a version (a tag names one version per notebook; tagging again moves it).")),
    "show": Command(add_show_args, magic="Show one version: variables, params, metrics, tags, cells, environment.",
                    cli="show one version: variables, params, metrics, cells, environment"),
    "export": Command(add_export_args, magic=(
        "Write version REF as one bundle file (.mvz): the notebook at that version, its "
        "variables, params, metrics, tags and environment, with a checksum of every member."),
        cli="write version REF as one bundle file (.mvz) to share or reproduce"),
    "import": Command(add_import_args, magic=(
        "Add the version in a bundle (.mvz) to this store, under the notebook it was "
        "taken in. Everything is checked first; nothing is unpickled. Restoring its pickle-based "
        "variables later needs %mv_restore REF --trust."),
        cli="check a bundle and add its version to the store (nothing is unpickled)"),
    "undo": Command(add_undo_args, magic=(
        "Put the variables back as they were before the last executed cell that changed any: changed "
        "variables get their earlier value (types and shared objects too), names it created are removed; "
        "the notebook's code is not touched. Repeat to walk further back (JupyterMV.undo_depth cells). "
        "The undone state is kept as a version first.")),
    "verify": Command(add_verify_args, cli="re-hash every blob and report damage by version and variable "
                                           "(exit 3 if any)"),
    "gc": Command(add_gc_args, cli="delete blob files and pack entries that no version references; rewrite packs "
                                   "less than half live"),
    "reproduce": Command(add_reproduce_args, cli=(
        "re-run a bundle's notebook in a fresh kernel and compare outputs, "
        "metrics and variables with the recorded ones (exit 1 on any difference)")),
    "mlflow push": Command(add_mlflow_push_args, cli=(
        "log version REF as an MLflow run (params, metrics, tags, notebook, "
        "environment, model) and optionally register the model"),
        cli_summary="log version REF as an MLflow run, optionally registering its model"),
    "push": Command(add_push_args, magic=(
        "Send versions to a remote (object storage: S3, GCS, Azure, a folder). Only what the remote "
        "lacks is sent; a version appears there once all its data has arrived. Credentials are withheld "
        "unless --include-secrets."),
        cli=("send versions to a remote (only what it lacks; a version appears there once all its data "
             "has arrived; credentials withheld unless --include-secrets)"),
        cli_summary="send versions to a remote"),
    "pull": Command(add_pull_args, magic=(
        "Bring the versions on a remote that this store lacks into the history (untrusted, like an "
        "imported bundle: every byte re-hashed, nothing unpickled without %mv_restore --trust)."),
        cli=("bring the versions on a remote that this store lacks into the history (untrusted, like an "
             "imported bundle: every byte re-hashed, nothing unpickled without --trust)"),
        cli_summary="bring a remote's versions into the history"),
    "remote add": Command(add_remote_add_args, cli=(
        "record a remote (name -> URL; never credentials) and check whether it honours conditional writes")),
    "remote remove": Command(add_remote_remove_args, cli="forget a remote (nothing on it is deleted)"),
    "remote ls": Command(add_remote_ls_args, cli=(
        "list the versions on a remote: notebook, its label there, who made and pushed it, when, tags, and "
        "whether this store has it; with no remote recorded, say so")),
    "remote gc": Command(add_remote_gc_args, cli=(
        "delete the objects on a remote that no version references (left by interrupted pushes), older "
        "than --grace; waits for pushes in progress and never deletes what they send; exit 3 when objects "
        "a version references are missing")),
    "clone": Command(add_clone_args, cli=(
        "make a new store in DIR/.jupyter_mv holding every version on the remote at URL, which it keeps as "
        "its default remote 'origin'"),
        cli_summary="a new store with every version on a remote"),
}


def offered_by(adapter: str) -> list[str]:
    """The names of the commands `adapter` offers, in COMMANDS order."""
    return [name for name, c in COMMANDS.items() if c.description(adapter) is not None]


def shared() -> list[str]:
    """The commands both the magics and the CLI offer (their options must agree, but for each adapter's own)."""
    return [name for name in offered_by(MAGIC) if name in offered_by(CLI)]
