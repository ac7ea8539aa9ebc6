"""One definition of each command's arguments (jupyter_mv/args.py) for both adapters: the %mv_* magics
registered in a real IPython shell and the `jupyter-mv` CLI. The commands both offer take the same
options (the CLI adds only its OWN_OPTIONS), an argument added to a command reaches both, and each
adapter keeps its own error behaviour (magic: one UsageError line; CLI: one stderr line and its exit code)."""

from __future__ import annotations

import argparse

import pytest
from IPython.core.error import UsageError

from jupyter_mv import api, cli, errors, magics
from jupyter_mv import args as shared_args


def _cli_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every leaf subcommand of `jupyter-mv` by its args.COMMANDS name (`mlflow push` for a nested one)."""
    found = {}

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    full = f"{prefix} {name}".strip()
                    if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                        walk(sub, full)
                    else:
                        found[full] = sub

    walk(cli.build_parser(), "")
    return found


def _magic_parsers(shell) -> dict[str, argparse.ArgumentParser]:
    """The parser of every %mv_* magic jupyter_mv registered in `shell`, by command name (`show` for
    %mv_show); not those of other Magics classes (a test's own, parsing as %mv_snapshot does)."""
    line = shell.magics_manager.magics["line"]
    return {name[len("mv_"):]: fn.parser for name, fn in line.items()
            if name.startswith("mv_") and isinstance(getattr(fn, "__self__", None), magics.MVMagics)}


def _signature(parser, leave_out=()) -> dict:
    """What a parser accepts, without its wording: positionals in order (dest), and for each option
    string the action's dest, kind, type, choices and whether it is required."""
    positionals = [a.dest for a in parser._actions if not a.option_strings]
    options = {}
    for a in parser._actions:
        for s in a.option_strings:
            if s not in leave_out:
                options[s] = (a.dest, type(a).__name__, getattr(a.type, "__name__", a.type), a.choices, a.required)
    return {"positionals": positionals, "options": options}


def test_the_table_names_what_each_adapter_offers(shell):
    assert sorted(_magic_parsers(shell)) == sorted(shared_args.offered_by(shared_args.MAGIC))
    assert sorted(_cli_parsers()) == sorted(shared_args.offered_by(shared_args.CLI))
    assert {"log", "show", "diff", "export", "import"} <= set(shared_args.shared())


@pytest.mark.parametrize("command", shared_args.shared())
def test_a_shared_command_takes_the_same_options_in_magic_and_cli(shell, command):
    magic = _magic_parsers(shell)[command]
    cli_parser = _cli_parsers()[command]
    assert _signature(magic) == _signature(cli_parser, leave_out=cli.OWN_OPTIONS), command
    assert magic.prog == f"%mv_{command}" and cli_parser.prog == f"jupyter-mv {command}"


def test_registered_magics_are_built_from_the_table(shell):
    """What %mv_x? shows is exactly the parser args.py builds (nothing added or dropped on the way)."""
    for name, parser in _magic_parsers(shell).items():
        assert parser.format_help() == magics.command_parser(name).format_help(), name
        assert shell.magics_manager.magics["line"][f"mv_{name}"].__doc__ == parser.format_help(), name


def test_an_argument_added_to_a_command_reaches_both_adapters(monkeypatch):
    for name in shared_args.shared():
        original = shared_args.COMMANDS[name]

        def add_args(parser, adapter, _original=original.add_args):
            _original(parser, adapter)
            parser.add_argument("--probe-flag", action="store_true", help="added for the test")

        monkeypatch.setitem(shared_args.COMMANDS, name, shared_args.Command(
            add_args, magic=original.magic, cli=original.cli, cli_summary=original.cli_summary))
    parsers = _cli_parsers()
    for name in shared_args.shared():
        assert "--probe-flag" in _signature(magics.command_parser(name))["options"], name
        assert "--probe-flag" in _signature(parsers[name])["options"], name
    # a command only one adapter offers is untouched
    assert "--probe-flag" not in _signature(magics.command_parser("restore"))["options"]


def test_every_argument_of_every_command_has_help():
    for name, command in shared_args.COMMANDS.items():
        for adapter in shared_args.ADAPTERS:
            if command.description(adapter) is None:
                continue
            parser = argparse.ArgumentParser(prog=name)
            command.add_args(parser, adapter)
            for a in parser._actions:
                assert a.help and len(a.help) > 5, (name, adapter, a.dest)


# -- each adapter keeps its own errors ----------------------------------------------------------
def test_a_shared_command_missing_arguments_in_each_adapter(shell, run_cli):
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("mv_export", "")
    assert str(e.value) == "%mv_export: REF, PATH are required (see %mv_export? for usage)"
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("mv_show", "--bogus")
    assert str(e.value) == "%mv_show: unrecognized arguments: --bogus (see %mv_show? for usage)"
    r = run_cli("export")
    assert r.returncode == errors.EXIT_USAGE == 2
    assert r.stderr == ("jupyter-mv export: the following arguments are required: REF, PATH "
                        "(see jupyter-mv export --help)\n")


def test_the_magic_translator(shell, monkeypatch):
    shell.user_ns["a"] = 1
    shell.run_line_magic("mv_snapshot", "a")

    def broken(*args, **kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(api, "show", broken)
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("mv_show", "v1")
    assert str(e.value) == ("%mv_show: internal error KeyError: 'bug' "
                            "(set JUPYTER_MV_DEBUG=1 for the traceback and please report it)")
    monkeypatch.setenv("JUPYTER_MV_DEBUG", "1")
    with pytest.raises(KeyError):
        shell.run_line_magic("mv_show", "v1")

    def refused(*args, **kwargs):
        raise errors.UnknownRef("no version 'v9'")

    monkeypatch.setattr(api, "show", refused)  # an MVError is one line, debug or not
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("mv_show", "v9")
    assert str(e.value) == "%mv_show: no version 'v9'"
    assert magics.usage_error("%mv_x", UsageError("as it is")) is None


def test_the_cli_translator(run_cli, session, tmp_path, monkeypatch):
    session.namespace["a"] = 1
    api.take_snapshot(["a"])

    def broken(*args, **kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(api, "show", broken)
    r = run_cli("show", "v1", cwd=tmp_path)
    assert r.returncode == errors.EXIT_ERROR
    assert r.stderr.strip() == ("jupyter-mv show: internal error KeyError: 'bug' "
                                "(set JUPYTER_MV_DEBUG=1 for the traceback and please report it)")

    def refused(*args, **kwargs):
        raise errors.CorruptBlob("0" * 64, "truncated")

    monkeypatch.setattr(api, "show", refused)
    monkeypatch.setattr(errors.StoreError, "exit_code", 5)  # inherited by CorruptBlob: the class decides
    r = run_cli("show", "v1", cwd=tmp_path)
    assert r.returncode == 5 and r.stderr.strip() == "jupyter-mv show: blob 000000000000 is damaged: truncated"
