"""The widgets' front-end code: ES modules bundled by the lab extension's build from the one rendering
layer (labextension/src/render, entry points labextension/src/widgets/*.ts; `npm run build` in
labextension/, which `pip install` runs) into jupyter_mv/widgets/static/: `history.js`, `diff.js` (each
self-contained: DOMPurify, the npm package `dompurify` under MPL-2.0 OR Apache-2.0, is bundled inside
with its license comment and touches no global) and `widgets.css`. One module text is all anywidget
needs, so a widget works in any frontend anywidget supports (JupyterLab, Notebook 7, VS Code...)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).parent
STATIC = HERE / "static"


MISSING = ("jupyter_mv's widget front end is not built ({path} is missing): run `npm run build` in "
           "labextension/ (or reinstall jupyter_mv)")


def _read(name: str) -> str | None:
    try:
        return (STATIC / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@lru_cache(maxsize=None)
def module(name: str) -> str:
    """The ES module text of widget `name` ("history" or "diff"). When the bundle is missing (a source
    checkout nobody built), a module that shows that one line instead: importing never fails, and the
    text/HTML fallbacks in the widget's bundle still show the data."""
    text = _read(f"{name}.js")
    if text is None:
        import json

        msg = MISSING.format(path=STATIC / f"{name}.js")
        return ("export default { render({ el }) { el.textContent = " + json.dumps(msg) + "; } };\n")
    return text


@lru_cache(maxsize=None)
def css() -> str:
    return _read("widgets.css") or ""
