"""The real ``tensorboard`` of this venv as a child process, for the benchmarks: on 127.0.0.1 and a free port,
in a session of its own, the RSS of its process tree sampled (psutil when installed, else /proc) and the
process stopped past a limit."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

LOADERS = {"rust": "true", "python": "false"}  # --load_fast value per loader


def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            process = psutil.Process(root)
            total = 0
            for member in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += member.memory_info().rss
            return total
        except psutil.Error:
            return 0
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry.name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page
    return total


class Tensorboard:
    """The real ``tensorboard`` of this venv on 127.0.0.1 and a free port, in a session of its own; samples
    the RSS of its process tree every 0.5 s and stops it past ``max_rss`` bytes."""

    def __init__(self, logdir: Path, loader: str, max_rss: float):
        binary = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or shutil.which(
            "tensorboard"
        )
        if binary is None:
            raise SystemExit("error: no tensorboard executable next to this Python or on PATH")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.max_rss = max_rss
        self.peak = 0
        self.over_at: float | None = None  # seconds after the start when the RSS limit stopped it
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [binary, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--load_fast", LOADERS[loader]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._stop = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.lines = (self.lines + [line])[-40:]

    def _sample(self) -> None:
        while not self._stop.is_set() and self.process.poll() is None:
            rss = tree_rss(self.process.pid)
            self.peak = max(self.peak, rss)
            if rss > self.max_rss and self.over_at is None:
                self.over_at = time.monotonic() - self.started
                self.kill()
            self._stop.wait(0.5)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        self._stop.set()
        self._sampler.join(5)
        self.kill()
