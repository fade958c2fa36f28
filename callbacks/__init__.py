"""Training callbacks (installed as ``tb_cnnviz.callbacks``): when to compute what, and writing it."""
from tb_cnnviz.callbacks.callback import DEFAULT_EVERY_N_STEPS, CNNVizCallback

__all__ = ["CNNVizCallback", "DEFAULT_EVERY_N_STEPS"]
