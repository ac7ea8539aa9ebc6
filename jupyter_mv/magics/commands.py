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
from IPython.core.magic import MAGIC_NO_VAR_EXPAND_ATTR, Magics, line_magic, magics_class
from IPython.display import display, publish_display_data

from . import api, capture, config, redaction, sanitize
from .errors import MVError, PartialRestore
from .model import human_bytes
from .render import HistoryTable, VersionDetails

_STATE_ATTR = "_jupyter_mv_session"


# -- argument parsing ----------------------------------------------------------------------------
class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises one-line UsageErrors instead of exiting."""

    def error(self, message):
        missing = "the following arguments are required: "
        if message.startswith(missing):
            # argparse also lists optional positionals (nargs="*"/"?") that were not reached; name
            # only the truly required ones and say the others may be left out
            optional = {a.metavar or a.dest for a in self._actions if not a.option_strings and a.nargs in ("*", "?")}
            names = [x.strip() for x in message[len(missing):].split(",")]
            required = [x for x in names if x not in optional] or names
            left_out = [x for x in names if x in optional and x not in required]
            message = (f"{', '.join(required)} {'is' if len(required) == 1 else 'are'} required"
                       + (f"; {', '.join(left_out)} may be left out" if left_out else ""))
        raise UsageError(f"{self.prog}: {message} (see {self.prog}? for usage)")

    def exit(self, status=0, message=None):
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()

    def print_help(self, file=None):
        print(self.format_help(), file=file or sys.stdout)


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


def _parser(prog: str, description: str) -> _Parser:
    return _Parser(prog=prog, description=description, add_help=True)


def _lex(line: str, comments: bool = True) -> list[tuple[str, bool]]:
    """Split a magic's line as a POSIX shell does, with comments: (word, quoted) pairs.

    Quoting follows `shlex.split(posix=True)` (single quotes literal; in double quotes a backslash
    escapes only `"` and `\\`; outside quotes it escapes any character). A `#` that starts a word
    outside quotes begins a comment running to the end of the line, as in bash, so
    `-t baseline  # v1` drops the comment while `-t run#2` and `-m "a # b"` keep their `#`.
    `quoted` tells a word that was (partly) quoted or escaped, so `'--weird'` stays a value.
    Raises ValueError on an unclosed quote or a trailing backslash."""
    return _scan(line, comments)[0]


def _code_part(line: str) -> str:
    """`line` without its trailing comment (the rules of `_lex`); unchanged if it does not lex."""
    try:
        return line[: _scan(line, True)[1]]
    except ValueError:
        return line


def _scan(line: str, comments: bool) -> tuple[list[tuple[str, bool]], int]:
    """The words of `line` and where its comment starts (len(line) when it has none)."""
    words: list[tuple[str, bool]] = []
    buf: list[str] = []
    in_word = quoted = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            if in_word:
                words.append(("".join(buf), quoted))
                buf, in_word, quoted = [], False, False
            i += 1
        elif c == "#" and not in_word and comments:
            return words, i
        elif c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            buf.append(line[i + 1:end])
            in_word = quoted = True
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ValueError("No closing quotation")
                ch = line[i]
                if ch == '"':
                    break
                if ch == "\\" and i + 1 < n and line[i + 1] in '"\\':
                    i += 1
                    ch = line[i]
                buf.append(ch)
                i += 1
            in_word = quoted = True
            i += 1
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("No escaped character")
            buf.append(line[i + 1])
            in_word = quoted = True
            i += 2
        else:
            buf.append(c)
            in_word = True
            i += 1
    if in_word:
        words.append(("".join(buf), quoted))
    return words, n


def _expand(shell, text: str, local_ns: dict | None) -> str:
    """IPython's `$name` / `{expr}` expansion of a magic line (what InteractiveShell.var_expand does),
    applied after the comment is cut off: IPython gives up on the whole line when any part of it
    fails to expand, and a comment such as `# restore {old}` would stop `$ref` from expanding."""
    if shell is None:
        return text
    ns = dict(shell.user_ns)
    ns.update(local_ns or {})
    try:
        from IPython.utils.text import DollarFormatter

        return DollarFormatter().vformat(text, args=[], kwargs=ns)
    except Exception:  # as IPython does: leave the text as written
        return text


def _split(line: str, prog: str, comments: bool = True) -> list[tuple[str, bool]]:
    try:
        return _lex(line, comments)
    except ValueError as e:
        raise UsageError(f"{prog}: cannot parse arguments ({e}); check the quotes") from None


_PLACEHOLDER = "⟨mv-quoted-{}⟩"  # printable, so argparse messages (which repr values) still map back


def _parse(parser: _Parser, words: list[tuple[str, bool]]) -> argparse.Namespace:
    """argparse over lexed words, where a quoted word is always a value: `'--weird'` or `-m "-x"`
    would otherwise read as options. Such words pass argparse as placeholders and are put back."""
    quoted_dash = {}
    argv = []
    for w, quoted in words:
        if quoted and w.startswith("-"):
            key = _PLACEHOLDER.format(len(quoted_dash))
            quoted_dash[key] = w
            w = key
        argv.append(w)
    try:
        args = parser.parse_args(argv)
    except UsageError as e:  # name the words as the user wrote them, not their placeholders
        msg = str(e)
        for key, w in quoted_dash.items():
            msg = msg.replace(key, w)
        raise UsageError(msg) from None
    if quoted_dash:
        for k, v in vars(args).items():
            if isinstance(v, str):
                setattr(args, k, quoted_dash.get(v, v))
            elif isinstance(v, list):
                setattr(args, k, [quoted_dash.get(x, x) if isinstance(x, str) else x for x in v])
    args._words = words
    return args


def _magic(parser: _Parser):
    """Parse the line with `parser`, translate jupyter_mv errors, attach the help as docstring."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, line="", local_ns=None):
            # expanded here (no_var_expand below), after the comment is cut off; a '#' that the
            # expansion brings in is data, not a comment
            line = _expand(getattr(self, "shell", None), _code_part(line), local_ns)
            words = _split(line, parser.prog, comments=False)
            try:
                args = _parse(parser, words)
            except _HelpShown:
                return None
            except UsageError as e:
                unrecognized = str(e).partition("unrecognized arguments: ")[2].rsplit(" (see", 1)[0].split()
                if unrecognized and parser is P_SNAPSHOT:
                    _check_unquoted_words(words, lambda w: w in unrecognized)
                raise
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

        # IPython's no_var_expand (its attribute, not a look-alike name): _expand does it, once; expanding
        # twice would expand again what the first pass produced ($ and {} that were data)
        setattr(wrapper, MAGIC_NO_VAR_EXPAND_ATTR, True)
        wrapper.needs_local_scope = True  # the caller's locals for $name, as IPython would use them
        wrapper.__doc__ = parser.format_help()
        wrapper.parser = parser
        return wrapper

    return deco


REF_HELP = ("vN, N, a tag, a version name, latest or latest~K; NB:REF (e.g. projects/churn.ipynb:v1) names a "
            "version of another notebook in this store")
NB_HELP = ("the notebook whose versions the REFs name, as recorded in the store (e.g. projects/churn.ipynb; "
           "default: this notebook); same as writing NB:REF")

P_SNAPSHOT = _parser("%mv_snapshot", "Take a new version of this notebook's state. With no VAR, every storable "
                     "user variable; unstorable ones, and those holding a credential (API key, token, password), "
                     "are skipped with a warning naming them: name a credential variable to store it, marked. "
                     "Params recorded without asking: the models' hyperparameters and UPPER_CASE scalar constants.")
P_SNAPSHOT.add_argument("vars", nargs="*", metavar="VAR", help="variables to store (default: all storable)")
P_SNAPSHOT.add_argument("-m", "--message", default="", help='what changed (quote several words: -m "first try")')
P_SNAPSHOT.add_argument("-n", "--name", default="", help="a name for the version, usable as REF: unique in the "
                        "notebook, not a tag, not vN, N or latest")
P_SNAPSHOT.add_argument("-t", "--tag", action="append", default=[], help="tag (repeatable; usable as REF)")
P_SNAPSHOT.add_argument("--params", metavar="EXPR", help="Python expression giving a dict of params (added to the "
                        "models' hyperparameters and UPPER_CASE constants; a credential value is not recorded)")
P_SNAPSHOT.add_argument("--metrics", metavar="EXPR", help="Python expression giving a dict of numbers")

P_LOG = _parser("%mv_log", "Show the version history of this notebook, newest first.")
P_LOG.add_argument("--notebook", metavar="NB", help="the history of another notebook in this store")
P_LOG.add_argument("-n", type=int, default=None, metavar="N", help="only the last N versions")
P_LOG.add_argument("--all", action="store_true", help="every notebook in the store")
P_LOG.add_argument("--no-auto", action="store_true", help="hide automatic (per-cell) versions")

P_AUTO = _parser("%mv_auto", "Snapshot automatically after every executed cell (only changed variables are "
                 "written; cells that change no variable make no version).")
P_AUTO.add_argument("state", choices=["on", "off"], nargs="?", help="turn automatic snapshots on or off")
P_AUTO.add_argument("--keep", type=int, default=None, metavar="N",
                    help="keep only the last N automatic versions (tagged, named and manual ones always stay)")

P_DIFF = _parser("%mv_diff", "Compare two versions. No REF: the last two versions; one REF: that version "
                 "against the current state of the kernel (nothing is written); two: A against B.")
P_DIFF.add_argument("a", nargs="?", metavar="A", help=REF_HELP)
P_DIFF.add_argument("b", nargs="?", metavar="B", help="the version to compare A with (default: the current state)")
P_DIFF.add_argument("--notebook", metavar="NB", help=NB_HELP)

P_RESTORE = _parser("%mv_restore", "Put a version's variables back into the namespace. REF is vN, N, a tag, a "
                    "version name or latest. --outputs alone re-displays the version's cell outputs.")
P_RESTORE.add_argument("ref", metavar="REF", help=REF_HELP)
P_RESTORE.add_argument("vars", nargs="*", metavar="VAR",
                       help="variables to restore (default: all); each comes back with the variables it "
                            "shares objects with (an optimizer with its model), named on the summary line")
P_RESTORE.add_argument("--prefix", default="",
                       help="restore VAR (and its group) as PREFIX+VAR beside the current one")
P_RESTORE.add_argument("--outputs", action="store_true", help="re-display the outputs of the version's cells "
                       "(those of an imported or pulled version sanitized: no script runs)")
P_RESTORE.add_argument("--trust", action="store_true", help="allow unpickling data of an imported version")
P_RESTORE.add_argument("--weights-only", action="store_true",
                       help="copy the stored weights of each torch module VAR into the live VAR of the same "
                            "architecture, in place (no unpickling: no --trust needed for imported versions)")
P_RESTORE.add_argument("--notebook", metavar="NB", help=NB_HELP)

P_TAG = _parser("%mv_tag", "Tag a version (a tag names one version per notebook; tagging again moves it).")
P_TAG.add_argument("ref", metavar="REF", help=REF_HELP)
P_TAG.add_argument("tag", metavar="TAG", help="a word without spaces or ':', not starting with '-', that is not vN, N, "
                   "latest or another version's name")
P_TAG.add_argument("--remove", action="store_true", help="remove the tag instead")
P_TAG.add_argument("--notebook", metavar="NB", help=NB_HELP)

P_SHOW = _parser("%mv_show", "Show one version: variables, params, metrics, tags, cells, environment.")
P_SHOW.add_argument("ref", metavar="REF", nargs="?", default="latest", help=REF_HELP + " (default: latest)")
P_SHOW.add_argument("--notebook", metavar="NB", help=NB_HELP)

P_EXPORT = _parser("%mv_export", "Write version REF as one bundle file (.mvz): the notebook at that version, its "
                   "variables, params, metrics, tags and environment, with a checksum of every member.")
P_EXPORT.add_argument("ref", metavar="REF", help=REF_HELP)
P_EXPORT.add_argument("path", metavar="PATH", help="the bundle file to write (e.g. baseline.mvz)")
P_EXPORT.add_argument("--notebook", metavar="NB", help=NB_HELP)
P_EXPORT.add_argument("--include-secrets", action="store_true",
                      help="ship variables and params holding credentials (API keys, tokens, passwords) and leave "
                      "them unmasked in cell sources and outputs; by default they are withheld and named")

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
        ns = self.shell.user_ns
        _check_unquoted_words(args._words, lambda w: w not in ns)
        params = self._eval_dict(args.params, "--params")
        metrics = self._eval_dict(args.metrics, "--metrics")
        result = api.take_snapshot(args.vars, message=args.message, name=args.name, tags=args.tag,
                                   params=params, metrics=metrics)
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
        try:
            names = api.restore(v, args.vars or None, prefix=args.prefix, trust=args.trust)
        except PartialRestore as e:  # the others are back: say so, then one line per failure
            names, failed = e.restored, e.failed
        print(restore_line(names, args.vars, args.prefix, _ref_text(v), api.session().restore_defined))
        for n, why in failed.items():
            print(f"jupyter_mv warning: could not restore {n!r}: {why}", file=sys.stderr)

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


def _quote(text: str) -> str:
    return shlex.quote(text)


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
    from . import codecs, loading
    if x.codec not in codecs.estimators.NAMES:
        return False
    try:
        loading.check_trust(api.session().store(), v, [x.name], False)
    except Exception:  # Untrusted, or data the audit cannot read: not an example to suggest
        return False
    return True


_MULTIWORD = {"-m": "message", "--message": "message", "-n": "name", "--name": "name"}


def _check_unquoted_words(words: list[tuple[str, bool]], stray_word) -> None:
    """`-m first try` makes `try` a VAR (or an unrecognized argument): say to quote the message
    instead. `stray_word(w)` tells a word that cannot be what argparse took it for."""
    for i, (w, quoted) in enumerate(words[:-1]):
        opt = w.split("=", 1)[0] if w.startswith("--") else w
        if opt not in _MULTIWORD:
            continue
        j = i + 1 if "=" not in w else i
        if j == i + 1 and words[j][1]:
            continue  # the value was quoted
        stray = []
        for w2, q2 in words[j + 1:]:
            if w2.startswith("-") and not q2:
                break
            stray.append(w2)
        missing = [k for k, x in enumerate(stray) if stray_word(x)]
        if missing:
            value = words[j][0].split("=", 1)[1] if j == i else words[j][0]
            flag = w.split("=", 1)[0]
            meant = " ".join([value, *stray[: missing[-1] + 1]])  # up to the last word that is no variable
            raise UsageError(f"%mv_snapshot: {stray[missing[0]]!r} is not a variable; to give a {_MULTIWORD[opt]} "
                             f"of several words, quote it: {flag} {_quote(meant)}")


def _credential_warnings():
    """CredentialsWithheld warnings as one plain line on stderr (not IPython's file:line form)."""
    return redaction.reported(lambda m: print(f"jupyter_mv warning: {m}", file=sys.stderr))


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _redisplay(cells, trusted: bool = True, label: str = "") -> None:
    """Re-publish recorded outputs. Those of a version made elsewhere (`trusted` False) go through
    sanitize.safe_output first: a frontend renders what the kernel publishes as trusted, so their
    HTML/Markdown is cleaned, SVG shown as an image and script-bearing mime types withheld."""
    shown = 0
    withheld: list[str] = []
    for c in cells:
        if not c.outputs:
            continue
        shown += 1
        prompt = f"[{c.execution_count}]" if c.execution_count is not None else "[ ]"  # not `label`: the version's
        first = (c.source.strip().splitlines() or [""])[0][:80]
        print(f"── In {prompt}: {first}")
        for o in c.outputs:
            t = o.get("output_type")
            if t == "stream":
                (sys.stderr if o.get("name") == "stderr" else sys.stdout).write(_text(o.get("text", "")))
            elif t in ("display_data", "execute_result"):
                if not trusted:
                    o, dropped = sanitize.safe_output(o)
                    withheld += dropped
                data = o.get("data", {})
                if _WIDGET_VIEW in data and len(data) > 1:
                    # a widget view re-published shows the live widget of that id, or, in another
                    # kernel, "Error displaying widget: model not found": its recorded text instead
                    data = {k: v for k, v in data.items() if k != _WIDGET_VIEW}
                publish_display_data(data, o.get("metadata") or {})
            elif t == "error":
                print("\n".join(o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"]), file=sys.stderr)
        sys.stdout.flush()
    if not shown:
        print("that version recorded no cell outputs")
    elif not trusted:
        print(f"jupyter_mv: {label} was not made in this store: its outputs are shown sanitized"
              + (f"; withheld (they could run script): {', '.join(sorted(set(withheld)))}" if withheld else ""),
              file=sys.stderr)


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
        self._orig_clear = None

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
            self._orig_clear = pub.clear_output
            pub.clear_output = self._clear_output

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
