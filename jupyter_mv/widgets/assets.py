"""The widgets' front-end code: hand-written ES modules, no bundler. Each widget's module is DOMPurify
(vendored, see below), the shared helpers (common.js: formatting, output rendering, the diff renderer,
the SVG chart) and the widget's own file of the same basename, so one module text is all anywidget
needs and the widget works in any frontend anywidget supports (JupyterLab, Notebook 7, VS Code...).

purify.min.js is DOMPurify 3.5.0 (https://github.com/cure53/DOMPurify), the `dist/purify.min.js` of the
npm package `dompurify`, unmodified, used under its Apache-2.0 license (purify.LICENSE; the package is
dual-licensed MPL-2.0 OR Apache-2.0). It is a UMD file: run inside a function that gives it a private
CommonJS `module`, it hands its export to `DOMPurify` without touching any global. common.js sanitizes
every recorded HTML/SVG output with it, because recorded outputs are untrusted content."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).parent
DOMPURIFY = "purify.min.js"


@lru_cache(maxsize=None)
def dompurify() -> str:
    """JS text that defines the constant `DOMPurify` (module scope) from the vendored UMD build."""
    umd = (HERE / DOMPURIFY).read_text(encoding="utf-8")
    return ("const DOMPurify = (function () {\n"
            "  const module = { exports: {} };\n"
            "  const exports = module.exports;\n"
            "  const define = undefined;  // never the AMD branch, even where a page has RequireJS\n"
            f"{umd}\n"
            "  return module.exports;\n"
            "})();\n")


@lru_cache(maxsize=None)
def module(name: str) -> str:
    return "\n".join((dompurify(), (HERE / "common.js").read_text(encoding="utf-8"),
                      (HERE / f"{name}.js").read_text(encoding="utf-8")))


@lru_cache(maxsize=None)
def css() -> str:
    return (HERE / "widgets.css").read_text(encoding="utf-8")
