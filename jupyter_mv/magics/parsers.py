"""The magics' argument parsers: one argparse parser a command, built from the shared definitions in
jupyter_mv/args.py, whose errors are one-line UsageErrors; and `_magic`, the decorator that makes a
method a line magic reading its line with one of them (expansion, words, parse, error translation)."""

from __future__ import annotations

import argparse
import functools
import sys

from IPython.core.error import UsageError
from IPython.core.magic import MAGIC_NO_VAR_EXPAND_ATTR

from .. import args as shared_args
from .errors import usage_error
from .lexing import _code_part, _expand, _quote, _split


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


def command_parser(name: str) -> _Parser:
    """A new parser for magic `%mv_<name>`: the arguments of args.COMMANDS[name], worded for a magic."""
    command = shared_args.COMMANDS[name]
    parser = _Parser(prog=f"%mv_{name}", description=command.magic, add_help=True)
    command.add_args(parser, shared_args.MAGIC)
    return parser


P_SNAPSHOT = command_parser("snapshot")
P_LOG = command_parser("log")
P_AUTO = command_parser("auto")
P_DIFF = command_parser("diff")
P_RESTORE = command_parser("restore")
P_TAG = command_parser("tag")
P_SHOW = command_parser("show")
P_EXPORT = command_parser("export")
P_IMPORT = command_parser("import")
P_PUSH = command_parser("push")
P_PULL = command_parser("pull")
P_UNDO = command_parser("undo")


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
            except Exception as e:
                error = usage_error(parser.prog, e)
                if error is None:
                    raise
                raise error from None

        # IPython's no_var_expand (its attribute, not a look-alike name): _expand does it, once; expanding
        # twice would expand again what the first pass produced ($ and {} that were data)
        setattr(wrapper, MAGIC_NO_VAR_EXPAND_ATTR, True)
        wrapper.needs_local_scope = True  # the caller's locals for $name, as IPython would use them
        wrapper.__doc__ = parser.format_help()
        wrapper.parser = parser
        return wrapper

    return deco
