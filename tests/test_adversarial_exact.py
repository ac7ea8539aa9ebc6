"""Exact or named, attacked the way users of dill session dumps, Kishu, %store and joblib reported
faults: a restore (or undo) must give back the same values, the same types and the same sharing
between objects, or say what it could not keep. Real IPython shells, real SQLite stores in tmp_path."""

from __future__ import annotations


def test_notebook_class_is_one_object_when_its_name_holds_something_else(run):
    # the class name rebound (`K = 3`) before the restore: each variable decoded on its own rebuilt
    # the stored definition, so `type(k) is K` and `type(k1) is type(k2)` were false
    run("class K:\n    def hello(self):\n        return 'hi'\nk1 = K(); k2 = K(); pair = [k1]")
    run("%mv_snapshot")
    run("K = 3; k1 = k2 = pair = None")
    run("%mv_restore v1")
    assert run("type(k1) is K and type(k2) is K and type(pair[0]) is K and isinstance(k2, type(k1))")
    assert run("pair[0] is k1 and k1.hello() == 'hi'")


def test_notebook_enum_and_dataclass_keep_identity_after_their_names_moved(run):
    run("import enum, dataclasses\n"
        "class Color(enum.Enum):\n    RED = 1\n"
        "@dataclasses.dataclass(frozen=True)\nclass P:\n    x: int\n"
        "c = Color.RED; favourite = {'c': Color.RED}; p = P(1); ps = [P(2)]")
    run("%mv_snapshot")
    run("Color = P = None; c = favourite = p = ps = 0")
    run("%mv_restore v1")
    assert run("c is Color.RED and favourite['c'] is c")
    assert run("type(p) is P and type(ps[0]) is P and p == P(1)")
