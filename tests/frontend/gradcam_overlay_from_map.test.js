// Grad-CAM view, the overlay drawn from a raw map (issue #18: no overlay PNGs logged): the map stretched per
// image as the PNGs were (snapshots.images.per_image_unit) and upsampled as grad_cam upsamples
// (torch's bilinear interpolation with align_corners=False).
import assert from "node:assert/strict";
import { test } from "node:test";

import { stretchedMap, upsampleBilinear } from "../../frontend/views/gradcam/explain.js";

const close = (actual, expected, tolerance = 1e-6) => {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) <= tolerance, `at ${i}: ${v} vs ${expected[i]}`),
  );
};

test("each image's map is stretched from its own minimum to its peak; flat maps are 0, NaN counts as 0", () => {
  const values = [2, 4, 6, 10, 3, 3, 3, 3, NaN, -2, 2, 6];
  close(stretchedMap(values, 0, 4), [0, 0.25, 0.5, 1]);
  close(stretchedMap(values, 4, 4), [0, 0, 0, 0]);
  close(stretchedMap(values, 8, 4), [0.25, 0, 0.5, 1]); // NaN -> 0 in [-2, 6]
});

test("upsampling uses half-pixel centres (align_corners=False), clamped at the borders", () => {
  // by hand: output x maps to (x + 0.5) / 2 - 0.5 in the 2-pixel input, clamped to [0, 1]
  close(
    upsampleBilinear([0, 1, 2, 3], 2, 2, 4, 4),
    [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3],
  );
  // a non-integer factor, 2x3 -> 5x7: torch.nn.functional.interpolate(x, size=(5, 7), mode="bilinear",
  // align_corners=False) gives these (first, middle and last rows)
  const out = upsampleBilinear([0, 5, 1, 2, -1, 3], 2, 3, 5, 7);
  close(out.slice(0, 7), [0, 0.7142857, 2.8571429, 5, 3.2857141, 1.5714283, 1], 1e-5);
  close(out.slice(14, 21), [1, 1.1428572, 1.5714287, 2, 2, 2, 2], 1e-5);
  close(out.slice(28, 35), [2, 1.5714285, 0.2857142, -1, 0.7142858, 2.4285717, 3], 1e-5);
});

test("at a whole odd factor stretching commutes with upsampling (the samples hit the map's own extremes)", () => {
  const map = [0.5, 3, -1, 2, 7, 1];
  const a = stretchedMap(upsampleBilinear(map, 2, 3, 6, 9), 0, 54);
  const b = upsampleBilinear(stretchedMap(map, 0, 6), 2, 3, 6, 9);
  close(a, b, 1e-6);
});
