"""The widgets' front-end code: hand-written ES modules, no bundler. Each widget's module is the
shared helpers (common.js: formatting, output rendering, the diff renderer, the SVG chart) followed
by the widget's own file of the same basename, so one module text is all anywidget needs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).parent


@lru_cache(maxsize=None)
def module(name: str) -> str:
    return (HERE / "common.js").read_text(encoding="utf-8") + "\n" + (HERE / f"{name}.js").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def css() -> str:
    return (HERE / "widgets.css").read_text(encoding="utf-8")
