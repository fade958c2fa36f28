"""Helpers shared by test modules (fixtures live in the ``conftest.py`` files).

Test modules import from here, never from ``conftest`` or from each other, so that moving a
test module never breaks another one. The helpers live in four modules named after what they do, and
this one re-exports them all (``from support import X`` keeps working for every ``X``):

- ``support_training``: tiny models and training loops (``train_small_vgg``, ``TwoConvNet``,
  ``fit_with_callback``, ``consecutive_batches``, ``every_step_patterns``) and runs logged by a real callback
  (``log_views_run``, ``log_broken_run``);
- ``support_logdirs``: reading a logdir back (``read_logdir``) and serving it through TensorBoard's WSGI app
  (``plugin_client``);
- ``support_exact_runs``: runs written value by value (``write_run``, ``flat_png``, ``write_exact_run`` and its
  constants, ``exploding_cam_run``);
- ``support_tensorboard``: the real ``tensorboard`` binary (``tensorboard``, ``serving``, ``http_get``,
  ``get_json``, ``wait_for``, ``api_url``).

Browser pages: ``tests/browser/browser_helpers.py`` (``plugin_page``).
"""

from __future__ import annotations

from support_exact_runs import (
    CAM_CLASSES,
    CAM_INFO,
    CAM_STEPS,
    CLASSES,
    DEAD,
    EMBEDDING,
    EXACT_RUN,
    EXPLODING_STEP,
    INFO,
    KERNELS,
    LABELS,
    MAPS,
    NAN,
    PATTERN_CHANNELS,
    PATTERN_VALUES,
    TOP,
    exploding_cam_maps,
    exploding_cam_run,
    flat_png,
    write_exact_run,
    write_run,
)
from support_logdirs import ACTIVATIONS_FIELDS, plugin_client, read_logdir
from support_tensorboard import TENSORBOARD, api_url, get_json, http_get, serving, tensorboard, wait_for
from support_training import (
    TRAINED_WIDTH,
    TwoConvNet,
    consecutive_batches,
    every_step_patterns,
    fit_with_callback,
    log_broken_run,
    log_views_run,
    train_small_vgg,
)

__all__ = [
    "ACTIVATIONS_FIELDS",
    "CAM_CLASSES",
    "CAM_INFO",
    "CAM_STEPS",
    "CLASSES",
    "DEAD",
    "EMBEDDING",
    "EXACT_RUN",
    "EXPLODING_STEP",
    "INFO",
    "KERNELS",
    "LABELS",
    "MAPS",
    "NAN",
    "PATTERN_CHANNELS",
    "PATTERN_VALUES",
    "TENSORBOARD",
    "TOP",
    "TRAINED_WIDTH",
    "TwoConvNet",
    "api_url",
    "consecutive_batches",
    "every_step_patterns",
    "exploding_cam_maps",
    "exploding_cam_run",
    "fit_with_callback",
    "flat_png",
    "get_json",
    "http_get",
    "log_broken_run",
    "log_views_run",
    "plugin_client",
    "read_logdir",
    "serving",
    "tensorboard",
    "train_small_vgg",
    "wait_for",
    "write_exact_run",
    "write_run",
]
