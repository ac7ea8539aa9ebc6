"""The widgets' one translation of an exception into the `message` they show (no raising into the
notebook): `{"kind": "error" | "warning", "text": one line}`.

The widgets' own errors (MVError, and LookupError/ValueError/RuntimeError raised by an action on bad
input) read as their message; anything else is a bug of ours and is named by its type, with the
traceback appended in debug mode (config.JupyterMV.debug, env JUPYTER_MV_DEBUG). A PartialRestore is a warning: the other variables
are back. (A restore that needs trust is not an error message but a choice; HistoryWidget offers it.)"""

from __future__ import annotations

import traceback

from .. import config
from ..errors import MVError, PartialRestore

OURS = (MVError, LookupError, ValueError, RuntimeError)


def error_text(e: BaseException, bug: bool = False) -> str:
    """One line (plus a traceback in debug mode, for a bug) saying what went wrong. `bug`: the failure
    can only be ours (rendering a diff), so the type is named whatever it is."""
    text = str(e) or type(e).__name__
    if bug or not isinstance(e, OURS):
        text = f"{type(e).__name__}: {text}"
        if __debug__ and config.current().debug:
            text += "\n" + traceback.format_exc()
    return text


def error_message(e: BaseException, context: str = "", bug: bool = False) -> dict:
    """The widget `message` for an exception caught by an action: kind and text (the caller adds `seq`).
    `context` ("cannot show this diff") prefixes the text; `bug` as in error_text."""
    if isinstance(e, PartialRestore):  # the others are back: say which, and why each failure failed
        failed = "; ".join(f"{n!r}: {why}" for n, why in e.failed.items())
        return {"kind": "warning", "text": f"restored {', '.join(e.restored) if e.restored else 'nothing'} "
                                           f"from {e.version}; could not restore {failed}"}
    text = error_text(e, bug)
    return {"kind": "error", "text": f"{context}: {text}" if context else text}
