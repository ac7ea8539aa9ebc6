"""A hostile bundle, built in the test: a version whose recorded cell outputs try to run script in the
page that shows them, next to benign rich outputs that must keep rendering. Shared by the kernel-side
sanitizer tests and the browser tests.

Every payload, if it ran, would set `top.__mv_pwned` to its own name (and the title to PWNED), so a
test that finds the flag unset after showing the outputs knows no script ran; the name says which."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

NOTEBOOK = "hostile.ipynb"


def _js(name: str) -> str:
    return f"top.__mv_pwned='{name}';top.document.title='PWNED'"


HTML_IMG_ONERROR = f'<img src="x-no-such-image" onerror="{_js("img-onerror")}">'
HTML_SCRIPT = f"<p>before</p><script>{_js('script-tag')}</script><p>after</p>"
HTML_IFRAME = f"<iframe srcdoc=\"<script>{_js('iframe-srcdoc')}</script>\"></iframe>"
HTML_SVG_INLINE = (f'<svg><animate onbegin="{_js("svg-animate")}" attributeName="x" dur="1s"/>'
                   f'<foreignObject><img src=y onerror="{_js("foreign-object")}"></foreignObject></svg>')
HTML_DETAILS = f'<details open ontoggle="{_js("details-ontoggle")}">d</details>'
SVG_ONLOAD = (f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" onload="{_js("svg-onload")}">'
              f'<script>{_js("svg-script")}</script><circle cx="20" cy="20" r="15" fill="red"/></svg>')
JAVASCRIPT = _js("application-javascript")
MARKDOWN = (f"# Hostile markdown\n\n<img src=z onerror=\"{_js('markdown-img')}\">\n\n"
            f"[click me](javascript:{_js('markdown-link')})\n")

BENIGN_CELL_TEXT = "mv-benign-cell"  # a DataFrame value, to find the rendered table
BENIGN_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="60" height="30">'
              '<rect class="mv-benign-svg" width="60" height="30" fill="blue"/></svg>')


def png(width: int = 6, height: int = 4, rgb=(200, 30, 30)) -> str:
    """A real PNG (base64), built with zlib: what matplotlib's inline backend records, only smaller."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(data).decode("ascii")


def dataframe_html() -> str:
    import pandas as pd

    return pd.DataFrame({"alpha": [1, 2], "beta": [BENIGN_CELL_TEXT, "y"]})._repr_html_()


def _display(data: dict, metadata: dict | None = None) -> dict:
    return {"output_type": "display_data", "data": {"text/plain": "<display>", **data}, "metadata": metadata or {}}


def hostile_cells():
    """(source, outputs) per cell; cell ids are cell-0, cell-1, … (what LabServer.write_notebook uses)."""
    return [
        ("show_html()", [_display({"text/html": HTML_IMG_ONERROR + HTML_SCRIPT + HTML_IFRAME + HTML_DETAILS})]),
        ("show_svg()", [_display({"image/svg+xml": SVG_ONLOAD})]),
        ("show_js()", [_display({"application/javascript": JAVASCRIPT})]),
        ("show_markdown()", [_display({"text/markdown": MARKDOWN})]),
        ("show_inline_svg()", [_display({"text/html": HTML_SVG_INLINE})]),
        ("df", [{"output_type": "execute_result", "execution_count": 6, "metadata": {},
                 "data": {"text/plain": "   alpha beta", "text/html": dataframe_html()}}]),
        ("plot_png()", [_display({"image/png": png()})]),
        ("plot_svg()", [_display({"image/svg+xml": BENIGN_SVG})]),
    ]


def benign_cells():
    """The same cells with plain outputs: a version to diff the hostile one against."""
    return [(src, [{"output_type": "stream", "name": "stdout", "text": f"plain {i}\n"}] if i != 6 else
             [_display({"image/png": png(rgb=(30, 30, 200))})])
            for i, (src, _) in enumerate(hostile_cells())]


def make_bundles(tmp: Path, notebook: str = NOTEBOOK) -> tuple[Path, Path]:
    """Two bundles of `notebook` made in a store under `tmp` (someone else's machine): v1 benign, v2
    hostile. Returns their paths. Tests sharing one lab server give each their own notebook name, so
    one test's imported versions never show up in another's history."""
    from jupyter_mv import api
    from jupyter_mv.model import Cell
    from jupyter_mv.store import Store

    tmp.mkdir(parents=True, exist_ok=True)
    st = Store(tmp / ".jupyter_mv")
    try:
        paths = []
        for n, cells in ((1, benign_cells()), (2, hostile_cells())):
            v = st.commit_version(notebook, [], message=f"{'benign' if n == 1 else 'hostile'} outputs", cells=[
                Cell(source=src, execution_count=i + 1, cell_id=f"cell-{i}", outputs=tuple(outs))
                for i, (src, outs) in enumerate(cells)])
            paths.append(api.export(v, tmp / f"v{n}.mvz", notebook=notebook, store=st))
        return paths[0], paths[1]
    finally:
        st.close()


def import_into(root: Path, bundles) -> None:
    """Import the bundles into the store of directory `root` (the colleague's), in order."""
    from jupyter_mv import api
    from jupyter_mv.store import Store

    st = Store(root / ".jupyter_mv")
    try:
        for b in bundles:
            api.import_bundle(b, store=st)
    finally:
        st.close()
