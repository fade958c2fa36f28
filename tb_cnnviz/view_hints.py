"""The empty-state text of each view of ``tb_cnnviz.kinds.VIEWS``: what to pass to get its data.

The frontend shows a view's text when a run has nothing for it. ``{every[<snapshot>]}`` is that
snapshot's default interval (``Snapshot.every_n_steps``), filled in by ``kinds.table()``, so the
texts never repeat the callback's defaults; literal braces are doubled. Standard library only.
"""

HINTS: dict[str, str] = {
    "overview": (
        "The Overview summarises what CNNVizCallback already logs for the other tabs: dead filters "
        "(every conv layer, by default), the first layer's smoothness (kernels), separability "
        "(embedding_probe=(images, labels)), Grad-CAM faithfulness (probe=... and faithfulness=True) "
        "and the probe images' accuracy (probe=(images, labels)), with findings computed from them."
    ),
    "filters": (
        "CNNVizCallback logs the kernels of the first conv layer every {every[kernels]} steps by default; "
        'choose layers with kernel_layers=[...] and the schedule with every_n_steps={{"kernels": N}}.'
    ),
    "activations": (
        "Pass probe=(images, labels) to CNNVizCallback: it then logs the activation maps of 3 evenly "
        "spaced stage outputs every {every[activations]} steps (activation_layers=[...] to choose)."
    ),
    "dead": (
        "CNNVizCallback measures every conv layer's activation rates over windows of "
        "{every[dead_filters]} steps by default "
        '(dead_filter_layers=[...], every_n_steps={{"dead_filters": N}}).'
    ),
    "gradcam": (
        "Pass probe=(images, labels) to CNNVizCallback: it then logs the Grad-CAM of the probe images "
        "at the last spatial map before the global pooling every {every[gradcam]} steps "
        '(gradcam_layers=[...] and every_n_steps={{"gradcam": N}} to choose; '
        'attributions=["saliency", "occlusion"] adds attribution maps; faithfulness=True scores each map '
        "against a random one by deletion and insertion)."
    ),
    "patterns": (
        'Pass pattern_layers=["features.conv2", ...] to CNNVizCallback: it then optimises an image for '
        "each filter chosen by pattern_channels (the first 64 by default; indices, 'most_active' or "
        "'dead' to choose), every {every[patterns]} steps and at on_epoch_end, in the background on a "
        "copy of the model."
    ),
    "embedding": (
        "Pass embedding_probe=(images, labels) (a few hundred to a few thousand held-out images) to "
        "CNNVizCallback: it then maps their codes in 2-D with t-SNE every {every[embedding]} steps "
        "and at on_epoch_end, stable across steps, with thumbnails (each filter's top images of "
        "top_example_layers are in the Top images tab)."
    ),
    "top_images": (
        "Pass embedding_probe=(images, labels) (a few hundred to a few thousand held-out images) to "
        "CNNVizCallback: with each embedding (every {every[embedding]} steps and at on_epoch_end, in "
        "the background) it records the k most activating probe images of every filter of "
        'top_example_layers (default: the activation layers; top_example_layers=["features.conv2", '
        "...] to choose), with the receptive field of each maximum."
    ),
    "separability": (
        "Pass embedding_probe=(images, labels) (at least 5 labelled images per class) to CNNVizCallback: "
        "it then fits a linear probe on the pooled codes of every stage output and of the classifier's "
        "input every {every[separability]} steps and at on_epoch_end, in the background, and logs its "
        "held-out accuracy (separability_layers=[...] to choose the layers)."
    ),
}
