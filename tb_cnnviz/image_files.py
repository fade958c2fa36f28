"""Read the image files given to the ``tb-cnnviz`` commands as float tensors in [0, 1].

Modes are converted where the meaning is clear, with a note saying so: transparency
(RGBA, LA, palette with transparency) is composited onto white, 16-bit images are
scaled by 1/65535, CMYK/YCbCr/LAB/HSV become RGB, grey images are repeated to RGB for a
3-channel model and RGB images become luminance (ITU-R 601) for a 1-channel model.
Unreadable files, 32-bit integer images and float images outside [0, 1] are errors.
Every error is a ``ValueError`` with one line naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
Note = Callable[[str], None]


def read_image(
    path: str, channels: int = 3, note: Optional[Note] = None, argument: str = "IMAGE"
) -> torch.Tensor:
    """The image at ``path`` as a float tensor ``[channels, H, W]`` in [0, 1]."""
    if not os.path.exists(path):
        raise ValueError(f"{argument}: {path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{argument}: {path} is a directory, expected an image file")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except UnidentifiedImageError:
        raise ValueError(f"{argument}: {path} is not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise ValueError(f"{argument}: cannot read {path} ({type(error).__name__}: {error})") from None
    array = _to_array(image, path, note or (lambda message: None), argument)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 3 and channels == 1:
        array = array @ np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None]
        (note or (lambda message: None))(f"{path}: RGB image converted to grey for a 1-channel model")
    if array.shape[2] != channels:
        raise ValueError(f"{argument}: {path} has {array.shape[2]} channels; the model expects {channels}")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _to_array(image: Image.Image, path: str, note: Note, argument: str) -> np.ndarray:
    """HWC or HW float32 in [0, 1]."""
    mode = image.mode
    if mode.startswith("I;16"):
        note(f"{path}: 16-bit image scaled to [0, 1]")
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode == "I":
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(
                f"{argument}: {path} is a 32-bit integer image with values outside 0..65535; expected 8- or 16-bit"
            )
        note(f"{path}: 16-bit image scaled to [0, 1]")
        return values.astype(np.float32) / 65535.0
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ValueError(f"{argument}: {path} is a floating-point image with values outside [0, 1]")
        return values
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "RGBa", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        note(f"{path}: {image.mode} image composited onto white")
        grey = image.mode == "LA"
        image = Image.alpha_composite(
            Image.new("RGBA", image.size, (255, 255, 255, 255)), image.convert("RGBA")
        )
        image = image.convert("L" if grey else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "RGB"):
        note(f"{path}: {image.mode} image converted to RGB")
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def fit(image: torch.Tensor, size: Sequence[int], resize_size: Optional[int] = None) -> torch.Tensor:
    """Resize ``image`` ``[C, H, W]`` so it covers ``size`` (or its shorter side to ``resize_size``), then centre-crop.

    An image that already has the size is returned unchanged.
    """
    height, width = int(size[0]), int(size[1])
    if tuple(image.shape[-2:]) == (height, width):
        return image
    in_h, in_w = image.shape[-2:]
    scale = (
        max(height / in_h, width / in_w)
        if resize_size is None
        else max(resize_size / min(in_h, in_w), height / in_h, width / in_w)
    )
    new_h, new_w = max(height, round(in_h * scale)), max(width, round(in_w * scale))
    resized = F.interpolate(
        image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1
    )[0].clamp(0, 1)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return resized[:, top : top + height, left : left + width]


def read_images(
    paths: Sequence[str],
    channels: int,
    size: Optional[Sequence[int]],
    resize_size: Optional[int] = None,
    note: Optional[Note] = None,
    argument: str = "IMAGE",
) -> torch.Tensor:
    """Several images as one batch ``[N, C, h, w]``; ``size=None`` needs them all to have the same size."""
    images = [read_image(path, channels, note, argument) for path in paths]
    if size is None:
        sizes = {tuple(image.shape[-2:]) for image in images}
        if len(sizes) > 1:
            raise ValueError(
                f"{argument}: the images have different sizes {sorted(sizes)}; pass --input-size"
            )
        return torch.stack(images)
    return torch.stack([fit(image, size, resize_size) for image in images])


def image_folder(
    root: str, argument: str = "IMAGE_FOLDER"
) -> tuple[list[str], Optional[list[int]], Optional[list[str]]]:
    """``(paths, labels, class_names)`` of an ImageFolder layout (``root/<class>/<image>``).

    A folder with images and no class folders gives ``labels=None``; files with other
    extensions are ignored.
    """
    if not os.path.exists(root):
        raise ValueError(f"{argument}: {root}: no such folder")
    if not os.path.isdir(root):
        raise ValueError(
            f"{argument}: {root} is not a folder; expected root/<class>/<image> (ImageFolder layout)"
        )
    entries = sorted(os.listdir(root))
    classes = [
        name for name in entries if os.path.isdir(os.path.join(root, name)) and not name.startswith(".")
    ]
    paths: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        for folder, _, files in sorted(os.walk(os.path.join(root, name))):
            for file in sorted(files):
                if file.lower().endswith(EXTENSIONS):
                    paths.append(os.path.join(folder, file))
                    labels.append(index)
    if classes and paths:
        return paths, labels, classes
    flat = [os.path.join(root, name) for name in entries if name.lower().endswith(EXTENSIONS)]
    if flat:
        return flat, None, None
    raise ValueError(
        f"{argument}: {root} holds no images (expected root/<class>/<image> with extensions {', '.join(EXTENSIONS)})"
    )


def thumbnail_map(
    images: torch.Tensor, layout, labels: Optional[Sequence[int]], side: int = 1200, thumb: int = 32
) -> torch.Tensor:
    """A 2-D map as one picture ``[3, side, side]`` in [0, 1]: each image's thumbnail at its point, framed in its class colour."""
    import matplotlib

    shown = images.detach().float().cpu().clamp(0, 1)
    shown = F.interpolate(shown, size=(thumb, thumb), mode="area")
    if shown.shape[1] == 1:
        shown = shown.expand(-1, 3, -1, -1)
    points = np.asarray(layout, dtype=np.float64)
    span = np.ptp(points, axis=0)
    points = (points - points.min(axis=0)) / np.where(span > 0, span, 1) * (side - thumb - 4) + 2
    canvas = torch.ones(3, side, side)
    colours = matplotlib.colormaps["tab10"]
    for index, (x, y) in enumerate(points):
        left, top = int(x), int(side - thumb - y)  # y grows upwards
        if labels is not None:
            colour = torch.tensor(colours(labels[index] % 10)[:3], dtype=torch.float32)[:, None, None]
            canvas[:, top - 2 : top + thumb + 2, left - 2 : left + thumb + 2] = colour
        canvas[:, top : top + thumb, left : left + thumb] = shown[index]
    return canvas
