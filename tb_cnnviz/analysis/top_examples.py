"""Max-activating examples per filter: a streaming top-k over a validation pass, plus receptive-field crops.

CS231n (after Girshick et al. 2014, "Rich feature hierarchies"): feed many
images through the network and keep, for each filter, the images that activate it most;
showing the patch of each image that the maximal unit *sees* (its receptive field,
Zeiler & Fergus 2014) tells what the filter looks for.

:class:`TopExamples` keeps only ``k`` entries per filter on the activations' device and
merges each batch into them, so a validation pass of any length costs O(C x (k + batch))
memory, never all activations. Ties are broken deterministically, so the result equals a
brute-force computation over the same images whatever the batching:

- an image's score for filter ``c`` is ``max`` over positions of ``A[c, y, x]``; among
  equal maxima the first position in row-major order is kept (``torch.max`` semantics);
- filters rank images by score (descending), equal scores by image id (ascending);
- NaN activations are ignored (treated as ``-inf``).

The crops' receptive fields come from :mod:`tb_cnnviz.analysis.receptive_fields` (convolution
arithmetic along one traced forward pass); ``ReceptiveField`` and ``receptive_field`` are
re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import torch

from tb_cnnviz.analysis.receptive_fields import ReceptiveField, receptive_field

__all__ = ["ReceptiveField", "TopExamples", "receptive_field"]

_EMPTY_ID = torch.iinfo(torch.int64).max  # sorts after every real id, so empty slots lose every tie


class TopExamples:
    """Streaming top-``k`` images per filter, ranked by the filter's maximal activation over positions.

    ``update`` it with each validation batch's activations of one layer; read
    ``values`` [C, k], ``image_ids`` [C, k] (-1 for a slot not yet filled),
    ``positions`` [C, k, 2] (row, col of the maximum in the activation map) and, when
    the batches' ``images`` were passed, ``crops()`` [C, k, channels, h, w]. State stays
    on the activations' device; ``reset()`` starts a new pass. Image ids must be unique
    within a pass (checked within each batch; across batches an image given twice can
    take two slots).
    """

    def __init__(self, k: int = 9, receptive_field: Optional[ReceptiveField] = None):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        if receptive_field is not None and not isinstance(receptive_field, ReceptiveField):
            raise TypeError(
                f"receptive_field: expected a ReceptiveField or None, got {type(receptive_field).__name__}"
            )
        self.k = k
        self.receptive_field = receptive_field
        self.reset()

    def reset(self) -> None:
        """Forget every image seen (the next ``update`` starts a new pass)."""
        self._values: Optional[torch.Tensor] = None
        self._ids: Optional[torch.Tensor] = None
        self._positions: Optional[torch.Tensor] = None  # flat index into the activation map
        self._crops: Optional[torch.Tensor] = None
        self._map_size: Optional[tuple[int, int]] = None
        self._image_size: Optional[tuple[int, int]] = None
        self._with_images: Optional[bool] = None
        self.count = 0

    # ------------------------------------------------------------------ reading

    def _require(self) -> None:
        if self._values is None:
            raise RuntimeError("TopExamples: no update yet; call update(activations, image_ids) first")

    @property
    def values(self) -> torch.Tensor:
        """[C, k] maximal activations, best first (``-inf`` in unfilled slots)."""
        self._require()
        return self._values

    @property
    def image_ids(self) -> torch.Tensor:
        """[C, k] int64 ids of the images, best first (-1 in unfilled slots)."""
        self._require()
        return torch.where(self._ids == _EMPTY_ID, torch.full_like(self._ids, -1), self._ids)

    @property
    def positions(self) -> torch.Tensor:
        """[C, k, 2] int64 (row, col) of each maximum in the activation map (-1 in unfilled slots)."""
        self._require()
        width = self._map_size[1]
        rows, cols = torch.div(self._positions, width, rounding_mode="floor"), self._positions % width
        result = torch.stack([rows, cols], dim=-1)
        return torch.where((self._ids == _EMPTY_ID)[..., None], torch.full_like(result, -1), result)

    def boxes(self, image_size: Optional[tuple[int, int]] = None) -> torch.Tensor:
        """[C, k, 4] int64 crop windows ``(x0, y0, x1, y1)`` (see :meth:`ReceptiveField.window`) in image pixels.

        Without a receptive field the window is the whole image. ``image_size``
        ``(height, width)`` defaults to the size of the images passed to ``update``.
        """
        self._require()
        size = self._resolve_image_size(image_size)
        y0, x0, height, width = self._windows(self._positions, size)
        result = torch.stack([x0, y0, x0 + width, y0 + height], dim=-1)
        return torch.where((self._ids == _EMPTY_ID)[..., None], torch.full_like(result, -1), result)

    def crops(self, images: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[C, k, channels, h, w] receptive-field crops around each maximum (zeros in unfilled slots).

        With ``images`` (a tensor indexed by image id, e.g. the whole probe set
        [num_images, channels, H, W]) they are cut from it; otherwise the crops kept
        during ``update(..., images=...)`` are returned.
        """
        self._require()
        if images is None:
            if self._crops is None:
                raise RuntimeError(
                    "crops: no images were passed to update(); pass images= here (indexed by image id)"
                )
            return self._crops
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(
                f"images: expected a tensor [num_images, channels, H, W] indexed by image id, got "
                f"{getattr(images, 'shape', type(images).__name__)}"
            )
        filled = self._ids != _EMPTY_ID
        if filled.any() and int(self._ids[filled].max()) >= images.shape[0]:
            raise ValueError(
                f"images: has {images.shape[0]} images but image id {int(self._ids[filled].max())} was recorded"
            )
        ids = torch.where(filled, self._ids, torch.zeros_like(self._ids))
        channels, filters = images.shape[1], self._ids.shape[0]
        cut = self._cut(
            images.to(self._ids.device),
            ids.reshape(-1),
            self._positions.reshape(-1),
            tuple(images.shape[-2:]),
        )
        cut = cut.reshape(filters, self.k, channels, *cut.shape[-2:])
        return cut * filled[..., None, None, None].to(cut.dtype)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """``values``, ``image_ids``, ``positions`` (and ``crops`` when kept): what a summary writer needs."""
        result = {"values": self.values, "image_ids": self.image_ids, "positions": self.positions}
        if self._crops is not None:
            result["crops"] = self._crops
        return result

    # ------------------------------------------------------------------ updating

    def update(
        self,
        activations: torch.Tensor,
        image_ids: Union[torch.Tensor, Sequence[int]],
        images: Optional[torch.Tensor] = None,
    ) -> None:
        """Merge one batch: ``activations`` [N, C, H, W] (or [N, C]) of ``N`` images with ids ``image_ids`` [N].

        ``images`` [N, channels, IH, IW] (optional, the same images): the receptive-field
        crops of the images that enter a top-k are kept, so :meth:`crops` needs no
        image store later. Pass them on every update of a pass or on none. No gradient
        is recorded; nothing but the top-k survives the call.
        """
        if not isinstance(activations, torch.Tensor):
            raise TypeError(f"activations: expected a tensor [N, C, H, W], got {type(activations).__name__}")
        if activations.dim() == 2:
            activations = activations[:, :, None, None]
        if activations.dim() != 4:
            raise ValueError(
                f"activations: expected [N, C, H, W] or [N, C], got shape {tuple(activations.shape)}"
            )
        if not activations.is_floating_point():
            activations = activations.float()
        count, filters = activations.shape[:2]
        device = activations.device
        ids = self._check_ids(image_ids, count, device)
        if self._values is not None:
            if filters != self._values.shape[0] or tuple(activations.shape[-2:]) != self._map_size:
                raise ValueError(
                    f"activations: expected [N, {self._values.shape[0]}, {self._map_size[0]}, {self._map_size[1]}] like the "
                    f"earlier batches of this pass, got {tuple(activations.shape)} (call reset() for another layer)"
                )
        with_images = images is not None
        if self._with_images is not None and with_images != self._with_images:
            raise ValueError("images: pass images on every update of a pass or on none")
        if with_images:
            if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] != count:
                raise ValueError(
                    f"images: expected a tensor [{count}, channels, H, W] matching activations, got "
                    f"{getattr(images, 'shape', type(images).__name__)}"
                )
            if self._image_size is not None and tuple(images.shape[-2:]) != self._image_size:
                raise ValueError(
                    f"images: expected size {self._image_size} like the earlier batches, got {tuple(images.shape[-2:])}"
                )
        if count == 0:
            return

        with torch.no_grad():
            flat = activations.detach().flatten(2)
            flat = torch.where(torch.isnan(flat), torch.full_like(flat, -math.inf), flat)
            scores, where = flat.max(dim=2)  # [N, C]; the first maximal position on ties
            if self._values is None:
                self._map_size = tuple(activations.shape[-2:])
                self._values = torch.full((filters, self.k), -math.inf, dtype=scores.dtype, device=device)
                self._ids = torch.full((filters, self.k), _EMPTY_ID, dtype=torch.int64, device=device)
                self._positions = torch.zeros((filters, self.k), dtype=torch.int64, device=device)
                self._with_images = with_images
                if with_images:
                    self._image_size = tuple(images.shape[-2:])
                    height, width = self._crop_size(self._image_size)
                    self._crops = torch.zeros(
                        (filters, self.k, images.shape[1], height, width), dtype=images.dtype, device=device
                    )
            state_device = self._values.device
            scores, where, ids = scores.to(state_device), where.to(state_device), ids.to(state_device)

            values = torch.cat([self._values, scores.t().to(self._values.dtype)], dim=1)  # [C, k + N]
            all_ids = torch.cat([self._ids, ids[None, :].expand(filters, count)], dim=1)
            positions = torch.cat([self._positions, where.t()], dim=1)
            # Rank by value (descending), then id (ascending): a stable sort by id, then a stable sort by value.
            by_id = torch.sort(all_ids, dim=1, stable=True).indices
            by_value = torch.sort(torch.gather(values, 1, by_id), dim=1, descending=True, stable=True).indices
            keep = torch.gather(by_id, 1, by_value)[:, : self.k]  # [C, k] indices into the k + N candidates

            if with_images:
                self._crops = self._merge_crops(keep, images.detach().to(state_device), positions)
            self._values = torch.gather(values, 1, keep)
            self._ids = torch.gather(all_ids, 1, keep)
            self._positions = torch.gather(positions, 1, keep)
        self.count += count

    # ------------------------------------------------------------------ helpers

    def _check_ids(self, image_ids, count: int, device: torch.device) -> torch.Tensor:
        if isinstance(image_ids, torch.Tensor):
            ids = image_ids.detach()
        else:
            try:
                ids = torch.as_tensor(list(image_ids))
            except (TypeError, ValueError):
                raise TypeError(
                    f"image_ids: expected a sequence or tensor of {count} integers, got {type(image_ids).__name__}"
                ) from None
        if ids.dim() != 1 or ids.shape[0] != count:
            raise ValueError(
                f"image_ids: expected {count} ids (one per image of activations), got shape {tuple(ids.shape)}"
            )
        if ids.is_floating_point() or ids.dtype == torch.bool or ids.is_complex():
            raise TypeError(f"image_ids: expected integers, got dtype {ids.dtype}")
        ids = ids.to(device=device, dtype=torch.int64)
        if count and int(ids.min()) < 0:
            raise ValueError(f"image_ids: expected non-negative ids, got {int(ids.min())}")
        if torch.unique(ids).numel() != count:
            raise ValueError(
                "image_ids: an id appears more than once in this batch; each image needs its own id"
            )
        return ids

    def _resolve_image_size(self, image_size) -> tuple[int, int]:
        if image_size is None:
            if self._image_size is None:
                raise ValueError(
                    "image_size: required (height, width) when no images were passed to update()"
                )
            return self._image_size
        size = tuple(int(v) for v in image_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"image_size: expected (height, width), got {image_size!r}")
        return size

    def _crop_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        if self.receptive_field is None:
            return image_size
        return min(self.receptive_field.size[0], image_size[0]), min(
            self.receptive_field.size[1], image_size[1]
        )

    def _windows(self, flat_positions: torch.Tensor, image_size: tuple[int, int]):
        """Top-left corners (y0, x0) of the crop windows of map positions, and the window size."""
        height, width = self._crop_size(image_size)
        if self.receptive_field is None:
            zero = torch.zeros_like(flat_positions)
            return zero, zero, height, width
        field = self.receptive_field
        map_width = self._map_size[1]
        rows = torch.div(flat_positions, map_width, rounding_mode="floor")
        cols = flat_positions % map_width
        y0 = (field.offset[0] + rows * field.stride[0]).clamp(0, image_size[0] - height)
        x0 = (field.offset[1] + cols * field.stride[1]).clamp(0, image_size[1] - width)
        return y0, x0, height, width

    def _cut(
        self, images: torch.Tensor, which: torch.Tensor, flat_positions: torch.Tensor, image_size
    ) -> torch.Tensor:
        """Crops [M, channels, h, w] of ``images[which[m]]`` around map position ``flat_positions[m]``, in one gather."""
        y0, x0, height, width = self._windows(flat_positions, image_size)
        device = images.device
        rows = y0[:, None] + torch.arange(height, device=device)  # [M, h]
        cols = x0[:, None] + torch.arange(width, device=device)  # [M, w]
        channels = torch.arange(images.shape[1], device=device)
        return images[
            which[:, None, None, None],
            channels[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]

    def _merge_crops(self, keep: torch.Tensor, images: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The crops of the new top-k: kept ones copied from the old state, new ones cut from ``images``."""
        filters = keep.shape[0]
        old_crops = self._crops
        result = torch.empty_like(old_crops)
        is_old = keep < self.k
        filter_index = torch.arange(filters, device=keep.device)[:, None].expand_as(keep)
        if is_old.any():
            result[is_old] = old_crops[filter_index[is_old], keep[is_old]]
        is_new = ~is_old
        if is_new.any():
            batch_index = keep[is_new] - self.k
            flat_positions = torch.gather(positions, 1, keep)[is_new]
            result[is_new] = self._cut(images, batch_index, flat_positions, self._image_size).to(result.dtype)
        return result
