"""Recorded outputs are untrusted content: what the kernel may re-publish from a version that was not
made in this store (imported from a bundle, pulled from a remote), so that no frontend runs script.

A frontend renders whatever the kernel publishes as trusted (JupyterLab runs the <script> of a
text/html output and every application/javascript output). So a re-display of recorded outputs keeps
only data that no frontend executes:

- an allowlist of mime types rendered as data (text/plain, PNG/JPEG/GIF/WebP/BMP images, JSON);
- text/html cleaned by nh3, the Python binding of the Rust sanitizer ammonia
  (https://github.com/rust-ammonia/ammonia), with an element/attribute allowlist, URL schemes limited
  to http(s)/mailto (and data: images on <img>), and style properties limited to colours, fonts,
  borders and padding (no positioning, so an output cannot cover the page);
- text/markdown rendered to HTML by markdown-it-py (CommonMark, which already refuses javascript:
  links) and cleaned the same way, then published as text/html;
- image/svg+xml shown through an <img> data URL: browsers never run an image's script nor load its
  external resources (the HTML standard's "secure static/animated mode" for SVG images);
- anything else (application/javascript, widget views, Bokeh/HoloViews exec bundles, Vega, unknown
  vendor types) is withheld and named.

The recorded data itself is never changed (a version holds exactly its moment's state); these
functions return cleaned copies for display only."""

from __future__ import annotations

import base64
import re
from functools import lru_cache

# Rendered as data by every frontend we know: nothing in them is executed.
PASS_THROUGH_MIMES = ("text/plain", "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp",
                      "application/json")

# Elements removed together with their content (their text is code, markup or a hidden document).
_DROP_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math",
                      "textarea", "select", "title"}

# Style properties kept in a style="" attribute: presentation only. No position/top/left/z-index/margin
# (an output could be placed over the notebook's UI), no background/background-image/cursor/content/
# behavior (URLs and legacy script hooks).
SAFE_STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-weight", "font-style", "font-size", "font-family", "font-variant",
    "text-align", "vertical-align", "text-decoration", "text-transform", "white-space", "line-height",
    "border", "border-collapse", "border-spacing", "border-color", "border-style", "border-width",
    "border-top", "border-bottom", "border-left", "border-right", "border-radius",
    "padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
    "width", "min-width", "max-width", "height", "min-height", "max-height",
})

_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp|bmp|svg\+xml)[;,]", re.I)
_STYLE_VALUE_SIGNS = re.compile(r"url\s*\(|expression\s*\(|image-set|\\|@import|javascript:|behavior", re.I)
_URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "poster", "background", "longdesc", "srcset"}


def _text(value) -> str:
    """nbformat allows a multi-line string as a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def _attribute_filter(tag: str, attribute: str, value: str):
    # a style's property names are filtered by ammonia, its values are not: a value that loads or
    # evaluates something (url(), IE's expression(), CSS escapes that could spell either) drops it
    if attribute == "style" and _STYLE_VALUE_SIGNS.search(value):
        return None
    # data: URLs only as <img src> of a raster or SVG image (an <img> never runs script); a data: link
    # could carry an HTML document.
    if attribute in _URL_ATTRIBUTES and value.strip().lower().startswith("data:"):
        return value if tag == "img" and attribute == "src" and _DATA_IMAGE.match(value.strip()) else None
    return value


@lru_cache(maxsize=1)
def _html_options() -> dict:
    import nh3

    attributes = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = {"class", "title", "lang", "dir", "style"}
    for tag in ("td", "th", "tr"):
        attributes.setdefault(tag, set()).update({"valign", "align", "rowspan", "colspan"} if tag != "tr"
                                                 else {"valign", "align"})
    attributes.setdefault("table", set()).update({"border", "cellpadding", "cellspacing", "width"})
    return {
        "tags": (set(nh3.ALLOWED_TAGS) | {"tfoot"}) - _DROP_WITH_CONTENT,
        "clean_content_tags": _DROP_WITH_CONTENT,
        "attributes": attributes,
        "attribute_filter": _attribute_filter,
        "url_schemes": {"http", "https", "mailto", "data"},
        "filter_style_properties": set(SAFE_STYLE_PROPERTIES),
        "link_rel": "noopener noreferrer nofollow",
        "strip_comments": True,
    }


def clean_html(html: str) -> str:
    """`html` (a fragment, str) with everything that can run script or restyle the page removed:
    <script>/<style>/<iframe>/<object>/<embed>/inline <svg> and <math> dropped with their content,
    other unknown elements unwrapped, event-handler and unknown attributes dropped, URLs limited to
    http(s)/mailto and data: images on <img>, style="" limited to SAFE_STYLE_PROPERTIES. A DataFrame's
    table keeps its <table>/<thead>/<tbody>/<tr>/<th>/<td> structure. Never raises on bad markup."""
    import nh3

    return nh3.clean(str(html), **_html_options())


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML allowed (it is cleaned afterwards, as a notebook's renderer would see it)
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_html(markdown: str) -> str:
    """Markdown (CommonMark plus tables and strikethrough, via markdown-it-py) as cleaned HTML
    (`clean_html`). Math ($…$) is left as text."""
    return clean_html(_markdown().render(str(markdown)))


def svg_img(svg: str) -> str:
    """An SVG document as an <img> with a base64 data URL: displayed, but its scripts, event handlers
    and external references never run or load (browsers treat an image's SVG as static content)."""
    b64 = base64.b64encode(str(svg).encode("utf-8")).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{b64}" alt="SVG image" style="max-width:100%">'


def safe_bundle(data: dict, metadata: dict | None = None) -> tuple[dict, dict, list[str]]:
    """A display mime bundle (nbformat `data`, and its `metadata`) made safe to publish from the kernel.

    Returns (data, metadata, withheld): the cleaned bundle (see the module docstring), the metadata
    of the mime types kept, and the names of the mime types left out because a frontend would execute
    them or they are unknown. A bundle with nothing left shows a text/plain line naming what was
    withheld. The input is not modified."""
    data = data if isinstance(data, dict) else {}
    out: dict = {}
    withheld: list[str] = []
    markdown = svg = None
    for mime, value in data.items():
        if mime == "text/html":
            out[mime] = clean_html(_text(value))
        elif mime == "text/markdown":
            markdown = _text(value)
        elif mime == "image/svg+xml":
            svg = _text(value)
        elif mime in PASS_THROUGH_MIMES:
            out[mime] = value if mime == "application/json" else _text(value)
        else:
            withheld.append(str(mime))
    if "text/html" not in out:
        if markdown is not None:
            out["text/html"] = markdown_html(markdown)
        elif svg is not None and not ({"image/png", "image/jpeg"} & out.keys()):
            out["text/html"] = svg_img(svg)
    if not out:
        out["text/plain"] = f"[{', '.join(withheld) or 'empty'} output withheld: recorded outputs of a version " \
                            "from elsewhere do not run script]"
    md = metadata if isinstance(metadata, dict) else {}
    kept_md = {k: v for k, v in md.items() if k in out}
    return out, kept_md, withheld


def safe_output(output: dict) -> tuple[dict, list[str]]:
    """One nbformat output made safe to re-display (a copy): display_data/execute_result through
    `safe_bundle`; stream and error outputs are text and pass unchanged. Returns (output, withheld)."""
    kind = output.get("output_type")
    if kind not in ("display_data", "execute_result"):
        return dict(output), []
    data, md, withheld = safe_bundle(output.get("data") or {}, output.get("metadata"))
    return {**output, "data": data, "metadata": md}, withheld
