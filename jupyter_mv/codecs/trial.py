"""Trial load: decode a fresh encoding at snapshot time from the buffers still in memory, so a
variable that was pickled but can never be unpickled (a bokeh figure whose `__setstate__` breaks,
a class whose reduce does not round-trip) is found and skipped when it is snapshotted, not at the
restore months later.

It is cheap: large buffers were pickled out of band (protocol 5) and torch tensors outside the
stream, so the trial unpickles only the small stream and builds arrays/tensors as views on the
buffers already in memory (read-only, no copy). Only encodings that unpickle are tried (the safe
formats decode from plain bytes and cannot fail this way), and only when their content changed
since the last snapshot (the caller decides that)."""

from __future__ import annotations

import contextlib
import sys
import warnings

from ..errors import DecodeError, MVError
from . import DecodeContext, Encoded, decode, estimators


class _TrialContext(DecodeContext):
    trial = True


def needs_trial(enc: Encoded) -> bool:
    """Does restoring `enc` unpickle (and so possibly fail)? The safe formats do not; nor do skops
    models, which load through skops' own typed schema (and would cost a full load: 0.3 s for a
    100-tree forest, where a pickle's trial costs well under a millisecond). Nor another variable
    under a new name (`m2 = model`, any codec): it restores as the object restored for the variable
    it names, whose own encoding is tried (trying the link alone could only fail: the variable it
    names is not in the trial)."""
    from .groups import base_of

    return not enc.safe and enc.codec not in estimators.NAMES and base_of(enc.meta) is None


def check(enc: Encoded) -> str | None:
    """None when `enc` decodes, else the reason it does not (one line)."""
    try:
        with warnings.catch_warnings(), _no_side_effects():
            warnings.simplefilter("ignore")  # torch warns about read-only buffers; the views are dropped
            try:
                decode(enc.codec, enc.meta, [_readonly(b) for b in enc.buffers], _context(enc))
            except MVError:
                # a __setstate__ that writes into its arrays needs writable buffers (a real restore
                # gives it fresh ones): before calling it broken, try again on copies
                decode(enc.codec, enc.meta, [bytearray(b) for b in enc.buffers], _context(enc))
    except MemoryError:  # not enough room for a second copy now says nothing about the data: kept
        return None
    except DecodeError as e:
        return str(e)
    except MVError as e:
        return str(e)
    except Exception as e:  # codecs.decode names its failures; this is the last resort
        return f"{type(e).__name__}: {e}"
    return None


def _context(enc: Encoded) -> _TrialContext:
    ctx = _TrialContext()
    # a group's pickle refers to variables stored in their own codec (codecs.groups): the live ones
    ctx.objects = dict(getattr(enc, "referenced", None) or {})
    return ctx


def _readonly(b) -> memoryview:
    return memoryview(b).toreadonly()


@contextlib.contextmanager
def _no_side_effects():
    """Undo what unpickling is known to register globally: a pyplot figure re-registers itself with
    pyplot (it would be shown at the end of the cell and become the current figure)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    before = list(helpers.Gcf.figs) if helpers is not None else None
    try:
        yield
    finally:
        helpers = sys.modules.get("matplotlib._pylab_helpers")
        if helpers is not None:
            figs = helpers.Gcf.figs
            for num in [n for n in figs if before is None or n not in before]:
                manager = figs.pop(num, None)
                try:
                    if manager is not None:
                        manager.destroy()
                except Exception:  # a backend that cannot destroy an unshown window: it is dropped anyway
                    pass
            for num in before or []:  # the current figure stays the current one
                if num in figs:
                    figs.move_to_end(num)
