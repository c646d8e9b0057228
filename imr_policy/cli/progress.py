"""A progress bar on standard error (count, rate, ETA) for long runs over a corpus, via tqdm."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from tqdm import tqdm


class Progress:
    """`enabled=None` shows the bar only when standard error is a terminal; messages go above it."""

    def __init__(self, total: int | None, *, enabled: bool | None, what: str = "cases") -> None:
        self._bar: Any = tqdm(
            total=total,
            unit=f" {what}",
            file=sys.stderr,
            disable=None if enabled is None else not enabled,
            dynamic_ncols=True,
            mininterval=0.5,
            smoothing=0.05,
        )

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def write(self, message: str) -> None:
        """A message on standard error that does not garble the bar."""
        tqdm.write(message, file=sys.stderr)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._bar.close()
