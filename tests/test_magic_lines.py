"""How the magics read their line, in a real IPython shell: shell-style words with trailing
comments, quoted words that stay values, `$name` expansion, the one-argument diff, names and tags
that could not be reached as a REF, and the messages that say what to do."""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import given, settings, strategies as st
from IPython.core.error import UsageError

from jupyter_mv import api
from jupyter_mv.magics import _lex


def usage_error(shell, magic: str, line: str) -> str:
    with pytest.raises(UsageError) as e:
        shell.run_line_magic(magic, line)
    msg = str(e.value)
    assert "\n" not in msg.strip() and msg.startswith(f"%{magic}:"), msg
    return msg


# -- lexing -------------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab -'\"\\\t$=~", max_size=24))
def test_lexer_splits_as_shlex_without_comments(line):
    """Without '#', the words are exactly shlex.split's (POSIX quoting, escapes, errors)."""
    try:
        want = shlex.split(line, posix=True)
    except ValueError:
        with pytest.raises(ValueError):
            _lex(line)
        return
    assert [w for w, _ in _lex(line)] == want


@pytest.mark.parametrize("line,words", [
    ('clf -m "C=1" -t baseline  # v1 C=1 first try', ["clf", "-m", "C=1", "-t", "baseline"]),
    ("baseline clf  # note", ["baseline", "clf"]),
    ("baseline clf # it's the old one", ["baseline", "clf"]),  # an apostrophe inside a comment
    ("# only a comment", []),
    ('-m "a # b"', ["-m", "a # b"]),
    ("-m 'a # b' # c", ["-m", "a # b"]),
    ("-t run#2", ["-t", "run#2"]),  # '#' inside a word is no comment (as in bash)
    (r"-m \#1", ["-m", "#1"]),
    ("v1\t#tab", ["v1"]),
])
def test_lexer_comments(line, words):
    assert [w for w, _ in _lex(line)] == words


def test_lexer_marks_quoted_words():
    assert _lex("v1 '--weird' --remove \"-x\" \\-y") == [
        ("v1", False), ("--weird", True), ("--remove", False), ("-x", True), ("-y", True)]


# -- comments in every magic -------------------------------------------------------------------
def test_trailing_comments_in_every_magic(shell, run, capsys, tmp_path):
    run("a = 1")
    run('%mv_snapshot a -m "C=1" -t baseline  # v1, the first try')
    v1 = api.resolve("v1")
    assert (v1.message, v1.tags, v1.variables) == ("C=1", ("baseline",), ("a",))
    run("a = 2")
    run("%mv_snapshot a -n second  # after the change")
    assert api.resolve("latest").name == "second"
    run("%mv_tag v2 best  # the good one")
    assert api.resolve("best").n == 2
    run("%mv_restore baseline a  # note")
    assert shell.user_ns["a"] == 1
    capsys.readouterr()
    run("%mv_show baseline  # look")
    assert "C=1" in capsys.readouterr().out
    run("%mv_diff v1 v2  # what changed")
    assert "diff v1 -> v2" in capsys.readouterr().out
    run("%mv_log -n 1  # last one")
    assert "second" in capsys.readouterr().out
    run(f"%mv_export v1 {tmp_path / 'b.mvz'}  # to share")
    assert (tmp_path / "b.mvz").exists()
    run("%mv_auto  # state")
    assert "automatic snapshots are off" in capsys.readouterr().out
    run("%mv_tag v2 best --remove # not so good")
    assert api.resolve("v2").tags == ()


def test_dollar_expansion_with_comments(shell, run, capsys):
    run("a = 1\nref = 'v1'\nmsg = 'from a variable'")
    run('%mv_snapshot a -m "$msg" # IPython expands it in double quotes')
    assert api.resolve("v1").message == "from a variable"
    run("a = 5")
    run("%mv_restore $ref a  # expanded ref")
    assert shell.user_ns["a"] == 1
    run("%mv_snapshot a -m {msg.upper()!r}  # braces are expanded too")
    assert api.resolve("v2").message == "FROM A VARIABLE"


def test_metrics_expression_with_hash_inside_quotes(shell, run):
    run("a = 1\nd = {'#': 0.5}")
    run("%mv_snapshot a --metrics \"{'acc#1': 0.9, 'n': d['#']}\"  # metrics with '#' in a key")
    assert api.resolve("v1").metrics == {"acc#1": 0.9, "n": 0.5}


def test_quoted_option_like_words_are_values(shell, run):
    run("a = 1")
    run('%mv_snapshot a -m "--- big change ---"')
    assert api.resolve("v1").message == "--- big change ---"
    run("%mv_snapshot a -m '-5 percent lr'")
    assert api.resolve("v2").message == "-5 percent lr"
    msg = usage_error(shell, "mv_tag", "v1 '--weird'")
    assert "bad tag '--weird'" in msg and "option" in msg
    assert usage_error(shell, "mv_tag", "v1 --weird").endswith("(see %mv_tag? for usage)")  # unquoted: an option


# -- one-argument diff and same-version diff -----------------------------------------------------
def test_diff_one_ref_is_against_the_current_state(shell, run, capsys):
    run("a = 1\nb = 'x'")
    run("%mv_snapshot a b")
    run("a = 2")
    capsys.readouterr()
    run("%mv_diff v1")
    out = capsys.readouterr().out
    assert "diff v1 -> current" in out and "a" in out
    d = api.diff_current("v1").to_dict()
    changed = [x["name"] for x in d["variables"]["changed"]]
    assert changed == ["a"]
    assert len(api.versions()) == 1  # nothing was written


@pytest.mark.parametrize("line,expect", [
    ("v1 v1", "v1 against itself: nothing to compare; %mv_diff v1 compares it with the current state"),
    ("v1 latest", "v1 and latest are the same version (v1): nothing to compare"),
    ("latest 1", "latest and 1 are the same version (v1): nothing to compare"),
    ("first v1", "first and v1 are the same version (v1)"),
])
def test_diff_of_a_version_with_itself_says_so(shell, run, capsys, line, expect):
    run("a = 1")
    run("%mv_snapshot a -t first")
    run("a = 2")
    capsys.readouterr()
    run(f"%mv_diff {line}")
    out = capsys.readouterr().out.strip()
    assert expect in out and "\n" not in out
    assert "no differences" not in out


def test_diff_without_arguments(shell, run, capsys):
    msg = usage_error(shell, "mv_diff", "")
    assert "has no versions" in msg and "take a snapshot first" in msg
    run("a = 1")
    run("%mv_snapshot a")
    msg = usage_error(shell, "mv_diff", "")
    assert "has 1 version; a diff needs two" in msg and "%mv_diff v1 compares it with the current state" in msg
    run("a = 2")
    run("%mv_snapshot a")
    run("a = 3")
    run("%mv_snapshot a")
    capsys.readouterr()
    run("%mv_diff")
    assert "diff v2 -> v3" in capsys.readouterr().out  # the last two


# -- names and tags that could not be reached -----------------------------------------------------
@pytest.mark.parametrize("name,why", [
    ("latest", "reads as a version number or latest"), ("v1", "reads as a version number"),
    ("3", "reads as a version number"), ("latest~1", "reads as"), ("LATEST", "reads as"), ("head", "reads as"),
    ("V7", "reads as"), ("a:b", "':' separates a notebook"), ("other.ipynb:v1", "':'"),
])
def test_unreachable_names_are_refused(shell, run, name, why):
    run("a = 1")
    msg = usage_error(shell, "mv_snapshot", f"a -n {shlex.quote(name)}")
    assert f"bad version name {name!r}" in msg and why in msg
    assert api.versions() == []  # nothing was written
    with pytest.raises(Exception, match="bad version name"):
        api.snapshot("a", name=name)


def test_name_collisions_are_refused(shell, run):
    run("a = 1")
    run("%mv_snapshot a -n first -t best")
    msg = usage_error(shell, "mv_snapshot", "a -n first")
    assert "version name 'first' is already v1's" in msg
    msg = usage_error(shell, "mv_snapshot", "a -n best")
    assert "version name 'best' is already a tag (of v1)" in msg
    run("%mv_snapshot a -n second")
    msg = usage_error(shell, "mv_tag", "v1 second")  # a tag equal to another version's name
    assert "tag 'second' is already the name of v2" in msg
    msg = usage_error(shell, "mv_snapshot", "a -t first")  # ... also when given at snapshot time
    assert "tag 'first' is already the name of v1" in msg
    assert len(api.versions()) == 2
    # what stays allowed: a version's own name as its tag, and moving a tag
    run("%mv_tag v2 second")
    run("%mv_tag v2 best")
    assert api.resolve("best").n == 2 and api.resolve("first").n == 1 and api.resolve("second").n == 2


@pytest.mark.parametrize("tag", ["HEAD", "latest~", "x:y", "-x", "Latest"])
def test_unreachable_tags_are_refused(shell, run, tag):
    run("a = 1")
    run("%mv_snapshot a")
    msg = usage_error(shell, "mv_tag", f"v1 '{tag}'")
    assert f"bad tag {tag!r}" in msg
    msg = usage_error(shell, "mv_snapshot", f"a -t '{tag}'")
    assert "bad tag" in msg
    assert len(api.versions()) == 1


# -- messages ------------------------------------------------------------------------------------
def test_restore_without_arguments_says_ref_is_required(shell, run):
    msg = usage_error(shell, "mv_restore", "")
    assert "REF is required" in msg and "VAR may be left out" in msg
    assert "VAR is required" not in msg and "REF, VAR" not in msg
    msg = usage_error(shell, "mv_tag", "")
    assert "REF, TAG are required" in msg


@pytest.mark.parametrize("line,hint", [
    ("-m first try", "-m 'first try'"),
    ("a -m first try", "-m 'first try'"),
    ("-m fixed the bug a", "-m 'fixed the bug'"),
    ("--message=first try", "--message 'first try'"),
    ("a -n my model", "-n 'my model'"),
])
def test_unquoted_message_gets_a_hint_to_quote(shell, run, line, hint):
    run("a = 1")
    msg = usage_error(shell, "mv_snapshot", line)
    assert "quote it" in msg and hint in msg, msg
    assert api.versions() == []


def test_message_followed_by_variables_is_no_error(shell, run):
    run("a = 1\nb = 2")
    run("%mv_snapshot -m first a b")
    v = api.resolve("v1")
    assert v.message == "first" and v.variables == ("a", "b")


def test_summary_line_says_what_was_stored(shell, run, capsys):
    run("import numpy as np\nx = np.arange(100_000)")
    capsys.readouterr()
    run("%mv_snapshot x")
    first = capsys.readouterr().out.strip()
    assert re.fullmatch(r"v1  1 variable  800\.0 kB stored, [\d.]+ kB new", first), first  # compressed
    run("%mv_snapshot x")
    again = capsys.readouterr().out.strip()
    assert again == "v2  1 variable  800.0 kB stored, 0 B new (800.0 kB unchanged, shared with earlier versions)"
    run("x[:10] = -1\ny = 3")
    third = capsys.readouterr().out.strip()
    run("%mv_snapshot x y")
    third = capsys.readouterr().out.strip()
    # x changed (one chunk rewritten), y is new and small (kept in the database): nothing is shared whole
    assert re.fullmatch(r"v3  2 variables  800\.0 kB stored, [\d.]+ (B|kB) new", third), third
    run("%mv_snapshot y")
    assert capsys.readouterr().out.strip() == "v4  1 variable  1 B stored, 0 B new (1 B unchanged, shared with earlier versions)"


def test_magics_after_unload_say_how_to_load(shell, run):
    run("a = 1")
    shell.run_line_magic("unload_ext", "jupyter_mv")
    msg = usage_error(shell, "mv_snapshot", "a")
    assert "%load_ext jupyter_mv" in msg
    assert api.session().namespace is not shell.user_ns or True  # (the API session is separate)
    shell.run_line_magic("load_ext", "jupyter_mv")
    run("%mv_snapshot a")
    assert api.resolve("v1").variables == ("a",)


def test_expansion_survives_comments_ipython_could_not_expand(shell, run):
    """IPython gives up expanding a whole line when any `$x`/`{x}` in it fails; a comment must not
    be able to stop `$ref` from expanding."""
    run("a = 1\nref = 'v1'\nmsg = 'x # y'")
    run('%mv_snapshot a -m "$msg"  # costs {undefined_thing} and $nothing')
    assert api.resolve("v1").message == "x # y"  # the '#' that expansion brought in is data
    run("a = 9")
    run("%mv_restore $ref a  # {not_defined} $nope")
    assert shell.user_ns["a"] == 1


def test_expansion_sees_the_callers_locals(shell, run):
    run("a = 1")
    run("%mv_snapshot a -t first")
    run("a = 2\n"
        "def back(which):\n"
        "    get_ipython().run_line_magic('mv_restore', '$which a  # from a function')\n"
        "back('first')")
    assert shell.user_ns["a"] == 1


def test_errors_name_quoted_words_as_written(shell):
    msg = usage_error(shell, "mv_log", "-n '-3'")
    assert "'-3'" in msg and "\x00" not in msg
