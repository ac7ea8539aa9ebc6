"""The layer contract of ../shared/DESIGN.md, as import-linter contracts in pyproject.toml
([tool.importlinter]): a module imports only from layers below it, the adapters never import each
other, IPython only in magics, tornado/jupyter_server only in server, anywidget only in widgets, no
import cycles. `lint-imports` checks the real package; the same check run on a copy of the package
with one bad import added proves each contract can fail."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "jupyter_mv"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under `cwd` with `cwd`'s pyproject.toml (cwd comes first on
    sys.path, so a copy there is what is analysed, not the installed package)."""
    assert LINT_IMPORTS.exists(), "import-linter is in the test extra: pip install -e '.[test]'"
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)})


def test_the_package_keeps_its_contracts():
    r = lint_imports(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    for contract in ("Layers", "Adapters never import each other", "IPython only in magics",
                     "tornado and jupyter_server only in server", "anywidget and ipywidgets only in widgets",
                     "No import cycles"):
        assert f"{contract}" in r.stdout and "BROKEN" not in r.stdout, r.stdout
    assert "0 broken" in r.stdout, r.stdout


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """A pristine copy of the Python side of the package and of pyproject.toml."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(PACKAGE, root / "jupyter_mv", ignore=shutil.ignore_patterns(
        "__pycache__", "labextension", "*.js", "*.css", "*.json", "*.yaml", "*.LICENSE"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _module_file(root: Path, module: str) -> Path:
    path = root.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


# (module that gets the line, the line, the contract that must break, what its report names)
VIOLATIONS = [
    # the core reaching up into the facade or an adapter, directly or in a function (lazily)
    ("jupyter_mv.model", "from . import api", "Layers", "jupyter_mv.model -> jupyter_mv.api"),
    ("jupyter_mv.store", "def _later():\n    from ..magics import commands", "Layers", "jupyter_mv.magics"),
    ("jupyter_mv.codecs", "from ..capture import Snapshot", "Layers", "jupyter_mv.capture"),
    ("jupyter_mv.errors", "from . import config", "Layers", "jupyter_mv.errors -> jupyter_mv.config"),
    # an indirect route: the core imports nothing upward itself but a helper below it does
    ("jupyter_mv.jsondata", "from . import loading", "Layers", "jupyter_mv.jsondata -> jupyter_mv.loading"),
    # adapters importing each other
    ("jupyter_mv.widgets.history", "from ..server import handlers", "Adapters never import each other",
     "jupyter_mv.widgets.history -> jupyter_mv.server.handlers"),
    ("jupyter_mv.cli", "from .magics import commands", "Adapters never import each other", "jupyter_mv.cli"),
    # frameworks outside their adapter
    ("jupyter_mv.capture", "from IPython import get_ipython", "IPython only in magics", "jupyter_mv.capture -> IPython"),
    ("jupyter_mv.widgets.diff", "import IPython.display", "IPython only in magics", "jupyter_mv.widgets.diff -> IPython"),
    ("jupyter_mv.api", "import tornado.web", "tornado and jupyter_server only in server", "jupyter_mv.api -> tornado"),
    ("jupyter_mv.cli", "from jupyter_server.utils import url_path_join", "tornado and jupyter_server only in server",
     "jupyter_mv.cli -> jupyter_server"),
    ("jupyter_mv.render", "import anywidget", "anywidget and ipywidgets only in widgets", "jupyter_mv.render -> anywidget"),
    ("jupyter_mv.magics", "import ipywidgets", "anywidget and ipywidgets only in widgets", "-> ipywidgets"),
    # a cycle inside a package
    ("jupyter_mv.store.db", "def _later():\n    from . import blobs", "No import cycles", "jupyter_mv.store"),
]


@pytest.mark.parametrize("module,line,contract,named", VIOLATIONS, ids=[f"{v[0]}:{v[2]}" for v in VIOLATIONS])
def test_a_bad_import_breaks_its_contract(package_copy, module, line, contract, named):
    path = _module_file(package_copy, module)
    before = path.read_text()
    try:
        path.write_text(before + "\n\n" + line + "\n")
        r = lint_imports(package_copy)
    finally:
        path.write_text(before)
    assert r.returncode == 1, r.stdout + r.stderr
    broken = [ln for ln in r.stdout.splitlines() if ln.endswith("BROKEN") or " BROKEN (" in ln]
    assert any(ln.startswith(contract) for ln in broken), r.stdout
    assert named in r.stdout.split("Broken contracts", 1)[1], r.stdout


def test_a_new_module_must_be_given_a_layer(package_copy):
    extra = package_copy / "jupyter_mv" / "newthing.py"
    extra.write_text("from . import errors\n")
    try:
        r = lint_imports(package_copy)
    finally:
        extra.unlink()
    assert r.returncode == 1 and "jupyter_mv.newthing" in r.stdout, r.stdout
    assert lint_imports(package_copy).returncode == 0  # the copy is pristine again


def _root_imports(package: Path) -> list[str]:
    """What modules of `package` take from its root other than submodules and `__version__`."""
    submodules = {p.stem for p in package.glob("*.py")} | {p.parent.name for p in package.glob("*/__init__.py")}
    found = []
    for path in package.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == package:
            continue
        depth = len(path.relative_to(package).parts) - 1  # packages between the root and this file
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name == "jupyter_mv"]
            elif isinstance(node, ast.ImportFrom):
                root = (node.level == depth + 1 and not node.module) or (node.level == 0 and node.module == "jupyter_mv")
                bad = [a.name for a in node.names if root and a.name not in submodules and a.name != "__version__"]
            else:
                continue
            found += [f"{path.relative_to(package).as_posix()}:{node.lineno} {name}" for name in bad]
    return found


def test_modules_import_the_package_root_only_for_its_version(package_copy):
    """The contracts ignore imports of the package root (the root wires the adapters together, so
    through it everything would seem to reach everything): that is safe only while a module takes
    nothing but `__version__` and submodules from it."""
    assert _root_imports(PACKAGE) == []
    path = package_copy / "jupyter_mv" / "store" / "db.py"
    before = path.read_text()
    try:
        path.write_text(before + "\n\ndef _later():\n    from .. import __version__, snapshot, api\n    import jupyter_mv\n")
        got = _root_imports(package_copy / "jupyter_mv")
    finally:
        path.write_text(before)
    assert [g.split(" ")[1] for g in got] == ["snapshot", "jupyter_mv"], got


def _shadowed(package_name: str) -> list[str]:
    """Modules of the package whose name the package's public API uses for something else (as `mv.diff`
    once hid `diff.py`): `from jupyter_mv import name` then gives the function, not the module."""
    import importlib
    import pkgutil
    pkg = importlib.import_module(package_name)
    out = []
    for m in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{package_name}.{m.name}")
        if getattr(pkg, m.name) is not mod:
            out.append(m.name)
    return out


def test_no_public_name_hides_a_module(tmp_path, monkeypatch):
    assert _shadowed("jupyter_mv") == []
    # the check sees a shadow: a package whose attribute `tool` hides its module tool.py
    pkg = tmp_path / "shadowpkg"
    pkg.mkdir()
    (pkg / "tool.py").write_text("X = 1\n")
    (pkg / "__init__.py").write_text("from . import tool as _t\n\ndef tool():\n    return _t.X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _shadowed("shadowpkg") == ["tool"]
