#!/usr/bin/env bash
# Set everything up, train the example CNN with CNNVizCallback for a short run into runs/,
# and say how to open TensorBoard. Extra arguments go to examples/cifar10/train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/cifar10/train.py --epochs 2 --steps 150 --logdir "runs/example-$(date +%Y%m%d-%H%M%S)" "$@"
echo
echo "Open the dashboards with:  .venv/bin/tensorboard --logdir runs   (then the CNN Viz tab)"
