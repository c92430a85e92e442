"""A cancel that reaches a job wherever it is, not only at its next progress call.

The Reporter checks the cancel flag on each progress call, which every stage makes often
(each segment, each alignment window, pyannote's hook). Between calls a stage may sit in a
long library call (loading a model, one decoder window on a slow CPU). `CancelWatch` polls the
flag from a thread; if the job has not stopped on its own `PATIENCE` seconds after the flag
appeared, it interrupts the main thread with SIGUSR1, whose handler raises Cancelled as soon
as the interpreter runs again. A call that never gives control back to Python is beyond any
check: the coordinator kills that worker after its grace period.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType

from transcriber.worker.pipeline.types import Cancelled

POLL = 0.25
PATIENCE = 1.0


class CancelWatch:
    def __init__(self, flag: Path) -> None:
        self.flag = flag
        self._done = threading.Event()
        self._active = False
        self._thread = threading.Thread(target=self._poll, daemon=True, name="cancel-watch")
        self._main = threading.current_thread() is threading.main_thread()
        self._previous: object = None

    def __enter__(self) -> CancelWatch:
        if self._main:
            # Signal handlers run in the main thread only; elsewhere (a test calling run_job
            # from a thread) the progress calls alone stop the job.
            self._previous = signal.signal(signal.SIGUSR1, self._interrupted)
            self._active = True
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._active = False
        self._done.set()
        self._thread.join()
        if self._main:
            signal.signal(signal.SIGUSR1, self._previous)  # type: ignore[arg-type]

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        if self._active:
            self._active = False
            raise Cancelled("interrupted")

    def _poll(self) -> None:
        while not self._done.wait(POLL):
            if self.flag.exists():
                break
        else:
            return
        if self._done.wait(PATIENCE) or not self._active:
            return
        ident = threading.main_thread().ident
        if ident is not None:
            signal.pthread_kill(ident, signal.SIGUSR1)
