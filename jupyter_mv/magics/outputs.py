"""Re-displaying the cell outputs a version recorded (`%mv_restore REF --outputs`)."""

from __future__ import annotations

import sys

from IPython.display import publish_display_data

from .. import sanitize

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _redisplay(cells, trusted: bool = True, label: str = "") -> None:
    """Re-publish recorded outputs. Those of a version made elsewhere (`trusted` False) go through
    sanitize.safe_output first: a frontend renders what the kernel publishes as trusted, so their
    HTML/Markdown is cleaned, SVG shown as an image and script-bearing mime types withheld."""
    shown = 0
    withheld: list[str] = []
    for c in cells:
        if not c.outputs:
            continue
        shown += 1
        prompt = f"[{c.execution_count}]" if c.execution_count is not None else "[ ]"  # not `label`: the version's
        first = (c.source.strip().splitlines() or [""])[0][:80]
        print(f"── In {prompt}: {first}")
        for o in c.outputs:
            t = o.get("output_type")
            if t == "stream":
                (sys.stderr if o.get("name") == "stderr" else sys.stdout).write(_text(o.get("text", "")))
            elif t in ("display_data", "execute_result"):
                if not trusted:
                    o, dropped = sanitize.safe_output(o)
                    withheld += dropped
                data = o.get("data", {})
                if _WIDGET_VIEW in data and len(data) > 1:
                    # a widget view re-published shows the live widget of that id, or, in another
                    # kernel, "Error displaying widget: model not found": its recorded text instead
                    data = {k: v for k, v in data.items() if k != _WIDGET_VIEW}
                publish_display_data(data, o.get("metadata") or {})
            elif t == "error":
                print("\n".join(o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"]), file=sys.stderr)
        sys.stdout.flush()
    if not shown:
        print("that version recorded no cell outputs")
    elif not trusted:
        print(f"jupyter_mv: {label} was not made in this store: its outputs are shown sanitized"
              + (f"; withheld (they could run script): {', '.join(sorted(set(withheld)))}" if withheld else ""),
              file=sys.stderr)


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else str(x)

