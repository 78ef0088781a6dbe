"""One byte-counting progress bar (tqdm, on stderr) fed by fsspec callbacks from many transfers."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any


class Progress:
    """Counts bytes moved by several files, from several threads; shows a bar if ``enabled``."""

    def __init__(self, total: int | None, label: str, *, enabled: bool) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=True
            )

    @contextlib.contextmanager
    def transfer(self, size: int | None) -> Iterator[Any]:
        """An fsspec callback for one file (``get_file``/``put_file``) of ``size`` bytes.

        Backends that report no progress (local copies) count in one step at the end.
        """
        from fsspec.callbacks import Callback, NoOpCallback

        if self._bar is None:
            yield NoOpCallback()
            return
        reported = [0]

        def hook(total: int | None, value: int, **_: Any) -> None:
            self._update(value - reported[0])
            reported[0] = value

        yield Callback(hooks={"bytes": hook})
        if size and reported[0] < size:
            self._update(size - reported[0])

    def _update(self, nbytes: int) -> None:
        if self._bar is not None and nbytes > 0:
            with self._lock:
                self._bar.update(nbytes)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
