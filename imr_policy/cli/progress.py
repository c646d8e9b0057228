"""A progress bar on standard error (count, rate, ETA) for long runs over a corpus, via tqdm when it is
installed (the `progress` extra); without it, no bar, and messages are plain lines. tqdm is imported only
when a bar is made, so the core `evaluate` path never imports it."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


class Progress:
    """`enabled=None` shows the bar only when standard error is a terminal; messages go above it."""

    def __init__(self, total: int | None, *, enabled: bool | None, what: str = "cases") -> None:
        try:
            from tqdm import tqdm  # noqa: PLC0415 - optional (`pip install 'imr-policy[progress]'`)
        except ImportError:
            self._bar: Any = None
            return
        self._bar = tqdm(
            total=total,
            unit=f" {what}",
            file=sys.stderr,
            disable=None if enabled is None else not enabled,
            dynamic_ncols=True,
            mininterval=0.5,
            smoothing=0.05,
        )

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def write(self, message: str) -> None:
        """A message on standard error that does not garble the bar."""
        if self._bar is None:
            print(message, file=sys.stderr)
        else:
            self._bar.write(message, file=sys.stderr)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
