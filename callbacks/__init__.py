"""Training callbacks (installed as ``tb_cnnviz.callbacks``): when to compute what, and writing it.

``LightningCNNVizCallback`` is imported on first use, so Lightning stays optional.
"""

from tb_cnnviz.callbacks.callback import DEFAULT_EVERY_N_STEPS, CNNVizCallback

__all__ = ["CNNVizCallback", "DEFAULT_EVERY_N_STEPS", "LightningCNNVizCallback"]


def __getattr__(name: str):
    if name == "LightningCNNVizCallback":
        from tb_cnnviz.callbacks.lightning import LightningCNNVizCallback

        return LightningCNNVizCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
