"""tb-cnnviz: see what a convolutional network learns while it trains, in a TensorBoard tab.

Importing the package is cheap (no torch): the TensorBoard plugin entry point lives
in ``tb_cnnviz.plugin`` and must load fast and without torch.
"""

__version__ = "0.1.0"
