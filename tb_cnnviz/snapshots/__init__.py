"""One function per snapshot of ``kinds.SNAPSHOTS`` (and per summary written once per run, ``probe`` and
``sprites``): compute it with ``tb_cnnviz.analysis`` and turn it into a list of summaries.

Shared by the training callback (which decides when each runs) and the ``tb-cnnviz``
command line (which runs them once on a trained model), so both write exactly the
same data for the plugin. Every such function takes one :class:`Inputs`, so the callback
calls each kind alike (``getattr(snapshots, name)(inputs)``) and a new kind needs no
edit there: a new snapshot is a module here and one import below. Tensors stay on the
model's device until encoded.
"""

from tb_cnnviz.snapshots.dead_filters import dead_filters
from tb_cnnviz.snapshots.embedding import embedding, sprites
from tb_cnnviz.snapshots.faithfulness import faithfulness
from tb_cnnviz.snapshots.images import display_images, to_uint8
from tb_cnnviz.snapshots.inputs import EmbeddingState, FilterRates, Inputs, Layers, Logits, new_state
from tb_cnnviz.snapshots.patterns import dream, dream_objective, pattern_summaries, patterns
from tb_cnnviz.snapshots.probe_images import (
    ATTRIBUTION_METHODS,
    MAX_CAM_SIDE,
    activations,
    attributions,
    gradcam,
    probe,
)
from tb_cnnviz.snapshots.separability import separability
from tb_cnnviz.snapshots.weights import kernels

__all__ = [
    "ATTRIBUTION_METHODS",
    "MAX_CAM_SIDE",
    "EmbeddingState",
    "FilterRates",
    "Inputs",
    "Layers",
    "Logits",
    "activations",
    "attributions",
    "dead_filters",
    "display_images",
    "dream",
    "dream_objective",
    "embedding",
    "faithfulness",
    "gradcam",
    "kernels",
    "new_state",
    "pattern_summaries",
    "patterns",
    "probe",
    "separability",
    "sprites",
    "to_uint8",
]
