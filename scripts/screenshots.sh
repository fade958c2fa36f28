#!/usr/bin/env bash
# Regenerate docs/screenshots/*.png (shown in README.md and docs/cli.md).
#
# Trains the example CNN twice on the built-in shapes dataset with CNNVizCallback attached
# (two learning rates, so the comparison view has something to compare), then runs the
# end-to-end browser test over that logdir; the test saves a screenshot of each view.
# Last, the tb-cnnviz pictures (cli-<command>.png): every command on a trained checkpoint.
#
#     scripts/screenshots.sh            # a few minutes on a laptop CPU
#     EPOCHS=1 scripts/screenshots.sh   # quicker, fewer logged steps
#     LOGDIR=/tmp/shots scripts/screenshots.sh  # keep the trained runs there (reused next time)
#     VIEWS_STEPS=200 scripts/screenshots.sh    # shorter training for the Grad-CAM/Patterns/Embedding pictures
#     ONLY=cli scripts/screenshots.sh           # only the tb-cnnviz pictures (a couple of minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
EPOCHS=${EPOCHS:-2}   # 156 steps per epoch on the shapes dataset
EVERY=${EVERY:-20}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # a small model: one thread is fastest on a busy CPU
mkdir -p docs/screenshots

if [ "${ONLY:-}" != cli ]; then
  if [ -n "${LOGDIR:-}" ] && [ -d "$LOGDIR" ]; then
    echo "reusing the runs in $LOGDIR"              # LOGDIR=... scripts/screenshots.sh: keep/reuse the runs
  else
    if [ -z "${LOGDIR:-}" ]; then
      LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/cnnviz-screenshots.XXXXXX")
      trap 'rm -rf "$LOGDIR"' EXIT
    fi
    "$PYTHON" examples/cifar10/train.py --dataset shapes --epochs "$EPOCHS" --every "$EVERY" --width 16 --lr 0.05 --seed 0 --logdir "$LOGDIR/lr-0.05"
    "$PYTHON" examples/cifar10/train.py --dataset shapes --epochs "$EPOCHS" --every "$EVERY" --width 16 --lr 0.5 --seed 1 --logdir "$LOGDIR/lr-0.5"
  fi

  CNNVIZ_E2E_LOGDIR="$LOGDIR" CNNVIZ_SCREENSHOTS=docs/screenshots "$PYTHON" -m pytest tests/browser/test_plugin_e2e.py -q -p no:cacheprovider
  # Grad-CAM, Patterns and Embedding (gradcam.png, patterns.png, embedding.png): the views test trains
  # its own small CNN with every kind logged; VIEWS_STEPS training steps (4 snapshots) for the pictures.
  CNNVIZ_VIEWS_STEPS=${VIEWS_STEPS:-400} CNNVIZ_SCREENSHOTS=docs/screenshots "$PYTHON" -m pytest tests/browser/test_plugin_views_e2e.py -q -p no:cacheprovider
fi

# One picture per tb-cnnviz command (cli-summary.png ... cli-embed.png): the CLI test trains the example's
# checkpoint (SmallVGG width 16), runs every command on it into one logdir and opens each run in the view
# that shows it; "good" settings (longer pattern optimisation, a larger dream, more images) instead of
# the test's quick ones.
CNNVIZ_CLI_QUALITY=good CNNVIZ_SCREENSHOTS=docs/screenshots "$PYTHON" -m pytest tests/browser/test_cli_e2e.py -q -p no:cacheprovider
ls -l docs/screenshots
