"""The ``faithfulness`` snapshot: do the Grad-CAM maps of the probe images point at what the class needs?

Per Grad-CAM layer it recomputes the CAM of the probe images at the layer's resolution (the same
call and classes as the ``gradcam`` snapshot: the labels, else the predicted class; one hooked
forward and backward, small next to what follows) and scores it with deletion and insertion
curves against a seeded random map of the same size (``analysis.faithfulness``). Writes:

- ``faithfulness`` ``[N, 4]``: per probe image the deletion AUC of the CAM and of the random map,
  then their insertion AUCs (content ``columns``);
- ``faithfulness_curves`` ``[N, 4, S + 1]``: the curves themselves, rows as those columns, at the
  fractions of pixels in content ``fractions``;
- the ordinary scalar ``cnnviz_scalars/gradcam_deletion_gap/<layer>``: the mean over the probe
  images of random minus CAM deletion AUC (positive: the CAM finds the evidence faster than chance).

Settings: ``steps`` (default 16), ``batch_size`` (images per forward, default 64), ``seed`` (the
random map, default 0: the same map at every step, so the gap compares across training).
"""

from __future__ import annotations

import numpy as np
import torch

from tb_cnnviz import summary
from tb_cnnviz.analysis import faithfulness as analysis
from tb_cnnviz.snapshots.inputs import Inputs

KIND = "faithfulness"
CURVES_KIND = "faithfulness_curves"
SCALAR = "gradcam_deletion_gap"
COLUMNS = ("deletion_cam", "deletion_random", "insertion_cam", "insertion_random")


def faithfulness(inputs: Inputs) -> list:
    """Per layer of ``inputs.layers`` (the Grad-CAM layers): the AUCs, the curves and the mean deletion gap."""
    from tb_cnnviz.analysis.cam import grad_cam

    settings = inputs.settings
    steps = settings.get("steps", analysis.DEFAULT_STEPS)
    batch_size = settings.get("batch_size", analysis.DEFAULT_BATCH_SIZE)
    seed = settings.get("seed", analysis.DEFAULT_SEED)
    model, images, target = inputs.scores_model(), inputs.images, inputs.target()
    sigma = min(images.shape[-2:]) * analysis.BLUR_SIGMA_FRACTION
    summaries = []
    for name, layer in inputs.layers:
        cam = grad_cam(model, layer, images, target, normalize="none", return_details=True)
        result = analysis.faithfulness(
            model, images, cam.native, cam.target, steps=steps, batch_size=batch_size, sigma=sigma, seed=seed
        )
        curves = result.curves
        areas = torch.cat([result.deletion_auc, result.insertion_auc], dim=1)  # [N, 4] in COLUMNS order
        rows = torch.stack(
            [curves.deletion[:, 0], curves.deletion[:, 1], curves.insertion[:, 0], curves.insertion[:, 1]], 1
        )
        summaries += [
            summary.tensor_summary(
                KIND,
                name,
                areas.float().cpu().numpy(),
                columns=list(COLUMNS),
                steps=int(steps),
                seed=int(seed),
                blur_sigma=float(sigma),
            ),
            summary.tensor_summary(
                CURVES_KIND,
                name,
                rows.float().cpu().numpy(),
                rows=list(COLUMNS),
                fractions=[float(f) for f in curves.fractions.cpu().tolist()],
            ),
            summary.scalar_summary(SCALAR, name, float(np.mean(result.deletion_gap.double().cpu().numpy()))),
        ]
    return summaries
