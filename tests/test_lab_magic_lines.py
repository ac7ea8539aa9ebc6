"""The lab extension's magic lines (labextension/src/kernel.ts, built to lib/kernel.js, run under node)
read back by the magics in a real IPython shell exactly as typed: a snapshot message with quotes, `$`,
braces, `#`, backslashes, newlines or any unicode is stored as the user wrote it, never expanded,
cut at a comment or doubled. Also the Restore command's recognition of the trust refusal."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from IPython.core.magic import Magics, line_magic, magics_class

from jupyter_mv import api, magics
from jupyter_mv.store import Store

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the lab extension's code")

REPO = Path(__file__).resolve().parent.parent
# what runMagic (kernel.ts) sends before the magic lines, in the same cell
ENSURE_LOADED = "__import__('jupyter_mv.api').api.session()"

NASTY = [
    "costs $5", "$name and ${name}, $$ and $x.y and $", "{x} {{x}} { } }{ {x!r} {x:>5} {'%c'%36}",
    "a # b", "# only a comment", "#", "it's \"quoted\" 'both' ''", "'", '"', "'\"'\"'",
    "back\\slash\\", "\\'", "\\", "a\\", "\\n is not a newline", "line1\nline2\r\nline3\r", "\n",
    "tab\there\x0bvt\x0cff", "unicode: café – 日本語 😀 ✓ ﬁ", "\u2028sep\u2029par\x85nel\x1cfs",
    "-m --weird", "--trust", "  padded  ", " ", "%c %s %%", "why?", "?", "end\\\n", "a=1; b=2",
    "`backticks` and $(echo hi) and ~user", "!ls", "%mv_restore v1", "NUL?\x00\x7f\x9f", "",
]


def _kernel_js() -> str:
    """labextension/lib/kernel.js without its imports and `export` keywords (the functions tested
    here use none of JupyterLab)."""
    lib = REPO / "labextension" / "lib" / "kernel.js"
    assert lib.exists(), "labextension/lib is not built: run `cd labextension && npm run build`"
    src = re.sub(r"^import [^;]*;\s*$", "", lib.read_text(), flags=re.M)
    return re.sub(r"^export (default )?", "", src, flags=re.M)


def node(call: str, inputs: list) -> list:
    """[call(x) for x in inputs], evaluated by node over the built kernel.js."""
    script = ("const vm = require('vm'); const ctx = {}; vm.createContext(ctx);"
              "const [src, inputs] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              f"vm.runInContext(src + '\\n;this.f = (x) => {call};', ctx);"
              "console.log(JSON.stringify(inputs.map((x) => ctx.f(x))));")
    r = subprocess.run(["node", "-e", script], input=json.dumps([_kernel_js(), inputs]), capture_output=True,
                       text=True, timeout=60, encoding="utf-8")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _bait(shell) -> None:
    """Names an unescaped `$name` / `{expr}` would expand to, and a shadowed builtin."""
    shell.user_ns.update({"name": "EXPANDED", "x": "EXPANDED", "chr": None, "y": "EXPANDED"})


def test_snapshot_message_typed_in_the_lab_is_stored_exactly(shell):
    """The Snapshot command's cell, as runMagic sends it, through IPython's input transformation,
    the magic's comment cut, expansion and quoting: the stored message is the typed text."""
    _bait(shell)
    lines = node("snapshotLine(x)", NASTY)
    assert lines[NASTY.index("")] == "%mv_snapshot"
    for msg, line in zip(NASTY, lines):
        assert "\n" not in line and "\r" not in line and len(line.splitlines()) == 1, line
        result = shell.run_cell(ENSURE_LOADED + "\n" + line, store_history=False, silent=True)
        assert result.success, (msg, line, result.error_before_exec or result.error_in_exec)
        assert api.resolve("latest").message == msg, (msg, line)
    assert shell.user_ns["name"] == "EXPANDED"


@magics_class
class _Echo(Magics):
    """A magic that parses its line exactly as %mv_snapshot does and keeps the message."""

    got: list = []

    @line_magic
    @magics._magic(magics.P_SNAPSHOT)
    def mv_echo(self, args):
        self.got.append(args.message)


def test_any_text_round_trips_through_the_magic_line(shell):
    """Random texts over the characters that quoting, expansion, comments and IPython's line
    handling treat specially (a seeded sample, so a failure repeats): each is read back exactly."""
    _bait(shell)
    rng = random.Random(17)
    alphabet = list("ab $${}{}''\"\"\\\\##%%!?:.[]()`~-=;\t\n\r") + ["\u2028", "\x85", "é", "😀", "\x00"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(400)]
    lines = node("magicArg(x)", texts)
    shell.register_magics(_Echo)
    _Echo.got = []
    for line in lines:
        result = shell.run_cell(f"%mv_echo -m {line}", store_history=False, silent=True)
        assert result.success, (line, result.error_before_exec or result.error_in_exec)
    assert _Echo.got == texts


def test_restore_command_recognizes_the_trust_refusal(shell, run, tmp_path):
    """The line a %mv_restore of an imported pickle-based variable fails with is recognized (so the
    lab offers to retry with --trust, naming what needs it); other failures are not."""
    run("class Box:\n    pass\nbox = Box()")
    # a colleague's store made the version: imported here, it is not this store's own
    theirs = Store(tmp_path / "colleague" / ".jupyter_mv")
    path = api.export(api.take_snapshot(store=theirs).version, tmp_path / "b.mvz", store=theirs)
    theirs.close()
    for n in ("box", "Box"):
        del shell.user_ns[n]
    got = api.import_bundle(path).version
    assert got.notebook == api.current_notebook() and not got.is_local
    result = shell.run_cell(f"%mv_restore {got.label}", store_history=False, silent=True)
    err = result.error_in_exec
    assert err is not None and "box" not in shell.user_ns
    refusal = f"{type(err).__name__}: {err}"
    other = "UsageError: %mv_restore: v9 does not exist (this notebook has v1-v2); pass --tag"
    reason, none = node("untrustedReason(x)", [refusal, other])
    assert none is None
    assert reason.startswith(f"{got.label} was imported") and "box would unpickle" in reason, reason
    assert "--trust" not in reason


def test_a_magic_line_is_expanded_once(shell):
    """`$name` / `{expr}` are expanded by the magic itself, once, after the comment is cut: a value
    that holds `$` or braces is taken as it is, never expanded again (IPython must not expand first)."""
    shell.user_ns.update({"msg": "costs $price {total} $$", "price": "WRONG", "total": "WRONG"})
    shell.run_cell("%mv_snapshot msg -m \"$msg\"  # {no_such_name}")
    assert api.resolve("latest").message == "costs $price {total} $$"
    shell.run_cell("%mv_snapshot msg -m \"{msg.upper()}\"")
    assert api.resolve("latest").message == "COSTS $PRICE {TOTAL} $$"
