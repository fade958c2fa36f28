"""The algorithms, pure torch: tensors in, tensors out; no TensorBoard, no Lightning."""
