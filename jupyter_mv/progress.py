"""Progress bars for long byte-counting work (snapshot, restore, export, import, push, pull): a
tqdm bar that appears only when the work is large and has already run for a while, so quick
operations pay neither tqdm's import nor a widget. The core only calls `tick(n)`; how progress is
shown is decided here."""

from __future__ import annotations

import time
from typing import Callable

PROGRESS_BYTES = 64 * 1024 * 1024  # consider a progress bar above this much data


class LazyBar:
    """Counts progress and shows a tqdm bar only once the work has run for DELAY seconds, so quick
    operations pay neither tqdm's import nor a widget."""

    DELAY = 2.0

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.done = total, desc, 0
        self.t0 = time.monotonic()
        self.bar = None

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif time.monotonic() - self.t0 >= self.DELAY:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                self.DELAY = float("inf")
                return
            self.bar = tqdm(total=self.total, initial=self.done, unit="B", unit_scale=True, desc=self.desc,
                            leave=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def for_bytes(total: int, desc: str) -> tuple[LazyBar | None, Callable[[int], None] | None]:
    """(bar, tick) for work on `total` bytes labelled `desc`: call `tick(n)` with each n bytes done
    and `bar.close()` when finished. The tqdm bar (bytes, SI-scaled) appears only after
    LazyBar.DELAY (2 s); below PROGRESS_BYTES (64 MiB) there is no bar at all: (None, None)."""
    if total < PROGRESS_BYTES:
        return None, None
    bar = LazyBar(total, desc)
    return bar, bar.update
