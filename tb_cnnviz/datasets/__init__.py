"""Built-in data sets that need no download (used by the example, the tests and the benchmarks)."""

from tb_cnnviz.datasets.shapes import CLASSES as SHAPE_CLASSES
from tb_cnnviz.datasets.shapes import ShapesDataset

__all__ = ["ShapesDataset", "SHAPE_CLASSES"]
