"""The magics' one error translator: any exception a magic's work raises becomes IPython's UsageError
with one line, `%mv_x: what is wrong` (IPython shows a UsageError without a traceback)."""

from __future__ import annotations

from IPython.core.error import UsageError

from .. import config
from ..errors import MVError, not_utf8


def usage_error(prog: str, e: Exception) -> UsageError | None:
    """The one-line UsageError magic `prog` (`%mv_restore`) raises for `e`, or None when `e` should
    propagate unchanged: it is a UsageError already, or an internal error (a bug of ours, not an
    MVError) in debug mode (config.JupyterMV.debug, env JUPYTER_MV_DEBUG), so its traceback shows. KeyboardInterrupt, a
    BaseException, never reaches here."""
    if isinstance(e, UsageError):
        return None
    if isinstance(e, MVError):
        return UsageError(f"{prog}: {e}")
    if not_utf8(e):  # undecodable bytes of a file name or environment variable met SQLite or JSON
        return UsageError(f"{prog}: {not_utf8(e)}")
    # a bug of ours: still one line, with a way to see more
    if config.current().debug:
        return None
    return UsageError(f"{prog}: internal error {type(e).__name__}: {e} "
                      "(set JUPYTER_MV_DEBUG=1 for the traceback and please report it)")
