"""The logdirs of ``benchmarks/scale.py``: each run written by a callback of its own through the callback's
write path at the default schedule of ``on_step_end(1..steps)``, from the pool of summaries
(``scale_pool.py``); a manifest with a fingerprint of the writing code, so that a kept logdir is reused only
when this code wrote it; subsets of runs as hard links; bytes on disk."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from scale_pool import (
    MODELS,
    PRETRAIN_STEPS,
    Pool,
    cached_pool,
    make_model,
    new_callback,
    probe_images,
    series_of,
)

HERE = Path(__file__).resolve().parent
MANIFEST = "scale_manifest.json"
# the version of what this file and scale_pool.py build: change it with them (reused logdirs are rebuilt)
BUILDER = 2
MB = 1e6
GB = 1e9


class BuildError(RuntimeError):
    """A logdir could not be built (disk space, inconsistent runs)."""


def snapshot_steps(name: str, every: int, steps: int) -> list[int]:
    """The steps at which ``on_step_end(1..steps)`` logs a snapshot: a baseline at step 1 (not for the
    dead-filter window, which closes at the multiples of its length), then every ``every`` steps."""
    marks = set(range(every, steps + 1, every))
    if name != "dead_filters":
        marks.add(1)
    return sorted(marks)


def schedule(every: dict, steps: int) -> list[tuple[int, list[str]]]:
    """``(step, snapshots due there)`` in the callback's order (``every``'s order: the training snapshots
    in the table's order, then the dead-filter window)."""
    due: dict[int, list[str]] = {}
    for name, interval in every.items():
        for step in snapshot_steps(name, interval, steps):
            due.setdefault(step, []).append(name)
    return sorted(due.items())


def write_run(path: Path, model, probe, pool: Pool, steps: int, index: int) -> tuple[dict, dict]:
    """One run written by a callback of its own through its write path; returns ``{"kind|layer": steps}``
    and ``{kind: bytes}``, the bytes of each kind's summaries as the snapshot functions made them (before
    the write path stores them: in the event file or a side file)."""
    viz = new_callback(model, str(path), probe)
    logged: dict[str, list[int]] = {}
    payload: dict[str, int] = {}
    write = viz._write  # the callback's one write path (scalars selection, then summary.write)

    def recording(summaries: list, step: int) -> None:
        for (kind, layer), size in series_of(summaries, sizes=True):
            logged.setdefault(f"{kind}|{layer or ''}", []).append(step)
            payload[kind] = payload.get(kind, 0) + size
        write(summaries, step)

    viz._write = recording  # what the callback itself writes (the layer order) goes through it too
    try:
        if hasattr(viz, "_log_layer_order"):
            viz._log_layer_order(1)
        written = dict.fromkeys(pool.variants, 0)
        once = dict(pool.once)
        for step, names in schedule(pool.every, steps):
            for name in names:
                states = pool.variants[name]
                summaries = states[(written[name] + index) % len(states)]
                written[name] += 1
                recording(list(summaries) + once.pop(name, []), step)
    finally:
        viz.close(final=False)
    return logged, payload


def code_fingerprint() -> str:
    """A digest of the writing code (tb_cnnviz without its plugin, the callbacks, ``BUILDER``): a reused
    logdir must have been written by the code being measured."""
    import hashlib

    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"builder {BUILDER}".encode())
    root = HERE.parent
    files = sorted(
        [p for p in (root / "tb_cnnviz").rglob("*.py") if "plugin" not in p.relative_to(root).parts]
        + list((root / "callbacks").rglob("*.py"))
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return "unknown"


def disk_bytes(path: Path) -> dict:
    """Bytes of the event files and of every other file (side files) under ``path``, each inode once."""
    seen: set[tuple[int, int]] = set()
    events = other = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            if name == MANIFEST:
                continue
            stat = os.stat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            files += 1
            if "tfevents" in name:
                events += stat.st_size
            else:
                other += stat.st_size
    return {"event_bytes": events, "side_bytes": other, "files": files}


def build_logdir(
    root: Path,
    model_name: str,
    runs: int,
    steps: int,
    variants: int,
    storage: str,
    min_free: float,
    log,
    copy_runs: bool = False,
    pretrain_steps: int = PRETRAIN_STEPS,
) -> dict:
    """``root/<model>-<steps>-<storage>/run-NNN`` for ``runs`` runs (reusing those a manifest says were
    written by this code); returns the manifest. Refuses to start a run that would leave under
    ``min_free`` bytes. ``storage``: ``side`` (the default write path) or ``events`` (written with
    ``TB_CNNVIZ_SIDE_FILE=0``: every payload in the event file, the format before the side file).
    ``copy_runs``: runs after run-000 are copies of its files (fast; the same content in every run)."""
    folder = root / f"{model_name}-{steps}-{storage}"
    manifest_path = folder / MANIFEST
    fingerprint = code_fingerprint()
    manifest = None
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("code") != fingerprint or manifest.get("variants") != variants:
            log(f"  {folder}: written by other code or settings; rebuilding")
            shutil.rmtree(folder)
            manifest = None
    if manifest is None:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {
            "model": model_name,
            "steps": steps,
            "variants": variants,
            "storage": storage,
            "code": fingerprint,
            "commit": git_commit(),
            "runs": [],
            "series": None,
            "build_s": 0.0,
            "describe": None,
        }
    if len(manifest["runs"]) >= runs:
        return manifest
    started = time.perf_counter()
    writer = None  # (pool, model, probe), made when a run is written
    per_run = 0.0
    for index in range(len(manifest["runs"]), runs):
        name = f"run-{index:03d}"
        copy = copy_runs and index > 0
        if not copy and writer is None:
            pool = cached_pool(
                root / f"{model_name}.pool.pickle", fingerprint, model_name, variants, log, pretrain_steps
            )
            writer = (pool, make_model(model_name), probe_images(MODELS[model_name]["size"]))
            manifest["describe"] = pool.describe
            per_run = max(per_run, estimate_run_bytes(pool, steps))
            log(f"  about {per_run / MB:,.0f} MB per run (the summaries' bytes at this schedule)")
        free = shutil.disk_usage(folder).free
        if free - 1.1 * per_run < min_free:
            raise BuildError(
                f"{model_name} x {steps:,} steps: run {index + 1} of {runs} needs about {per_run / GB:.2f} GB, "
                f"{free / GB:.1f} GB free (--min-free-gb {min_free / GB:g}); {index} runs built"
            )
        begin = time.perf_counter()
        if copy:  # new files (not links): TensorBoard and the page cache see 'runs' of their own
            shutil.copytree(folder / "run-000", folder / name, copy_function=shutil.copyfile)
            manifest["copied"] = manifest.get("copied", 0) + 1
        else:
            with side_file(storage):
                logged, payload = write_run(folder / name, writer[1], writer[2], writer[0], steps, index)
            if manifest["series"] is None:
                manifest["series"], manifest["payload_bytes"] = logged, payload
            elif {k: len(v) for k, v in logged.items()} != {k: len(v) for k, v in manifest["series"].items()}:
                raise BuildError(f"{name} logged other series than run-000")
        manifest["runs"].append(name)
        size = disk_bytes(folder / name)
        per_run = max(per_run if index else 0, size["event_bytes"] + size["side_bytes"])
        manifest_path.write_text(json.dumps(manifest))
        if index < 3 or (index + 1) % 50 == 0 or index + 1 == runs:
            log(
                f"  {name}{' (copy of run-000)' if copy else ''}: {per_run / MB:.1f} MB, "
                f"{time.perf_counter() - begin:.1f} s ({time.perf_counter() - started:.0f} s)"
            )
    manifest["build_s"] += time.perf_counter() - started
    manifest_path.write_text(json.dumps(manifest))
    return manifest


def estimate_run_bytes(pool: Pool, steps: int) -> float:
    """Bytes of one run's summaries at the schedule (the mean over the weight states of each snapshot)."""
    total = sum(proto.ByteSize() for summaries in pool.once.values() for proto in summaries)
    for name, states in pool.variants.items():
        mean = np.mean([sum(proto.ByteSize() for proto in summaries) for summaries in states])
        total += mean * len(snapshot_steps(name, pool.every[name], steps))
    return float(total)


@contextlib.contextmanager
def side_file(storage: str):
    """``events``: written as before the side file (``TB_CNNVIZ_SIDE_FILE=0``); ``side``: the default."""
    from tb_cnnviz import summary

    name = getattr(summary, "SIDE_FILE_ENV", "TB_CNNVIZ_SIDE_FILE")
    previous = os.environ.get(name)
    if storage == "events":
        os.environ[name] = "0"
    else:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def subset(folder: Path, names: list[str]) -> Path:
    """A logdir of exactly the runs ``names`` of ``folder``: ``folder`` itself, or hard links to their files."""
    if sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(names):
        return folder
    target = folder.parent / f"{folder.name}-{len(names)}runs"
    if target.exists():
        shutil.rmtree(target)
    for name in names:
        for path in (folder / name).rglob("*"):
            destination = target / name / path.relative_to(folder / name)
            if path.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, destination)
    return target
