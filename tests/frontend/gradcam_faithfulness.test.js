// Grad-CAM view, faithfulness helpers (frontend/views/gradcam/faithfulness.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  curveLines,
  flagText,
  flaggedImages,
  gapText,
  imageSummary,
} from "../../frontend/views/gradcam/faithfulness.js";

const image = (index, deletion_cam, deletion_random, flag, extra = {}) => ({
  index,
  deletion_cam,
  deletion_random,
  insertion_cam: 0.8,
  insertion_random: 0.5,
  deletion_gap: deletion_cam === null ? null : deletion_random - deletion_cam,
  insertion_gap: 0.3,
  no_better_than_random: flag,
  curves: null,
  ...extra,
});
const ANSWER = {
  step: 40,
  min_gap: 0.01,
  fractions: [0, 0.5, 1],
  images: [
    image(0, 0.2, 0.5, false, {
      curves: {
        deletion_cam: [0.9, 0.1, 0.05],
        deletion_random: [0.9, 0.5, 0.05],
        insertion_cam: [0.05, 0.8, 0.9],
        insertion_random: [0.05, 0.5, 0.9],
      },
    }),
    image(1, 0.6, 0.5, true),
    image(2, null, 0.5, null),
    image(3, 0.7, 0.4, true),
  ],
};

test("gaps are signed text, unmeasured ones n/a", () => {
  assert.equal(gapText(0.25), "+0.250");
  assert.equal(gapText(-0.045), "−0.045");
  assert.equal(gapText(null), "n/a");
  assert.equal(gapText(NaN), "n/a");
});

test("only images flagged true count as no better than random (null: not measured)", () => {
  assert.deepEqual(flaggedImages(ANSWER), [1, 3]);
  assert.equal(
    flagText(ANSWER),
    "CAM no better than random (deletion gap < 0.01) on 2 of 4 probe images at step 40: #1, #3",
  );
  const good = { step: 5, images: [image(0, 0.1, 0.5, false), image(1, null, 0.5, null)] };
  assert.equal(flagText(good), "CAM better than random on every measured probe image at step 5.");
});

test("the summary of one image names its areas, gaps and verdict", () => {
  const first = imageSummary(ANSWER, 0);
  assert.match(first, /deletion area CAM 0\.200 vs random 0\.500 \(gap \+0\.300\)/);
  assert.doesNotMatch(first, /no better/);
  assert.match(imageSummary(ANSWER, 1), /CAM no better than random$/);
  assert.match(imageSummary(ANSWER, 2), /deletion area CAM n\/a .*gap n\/a.* — not measured$/);
  assert.equal(imageSummary(ANSWER, 9), "No faithfulness data for probe #9 at step 40.");
});

test("curve lines are over the percentage of pixels, CAM solid and random dashed", () => {
  const lines = curveLines(ANSWER, 0, ["a", "b", "c"]);
  assert.deepEqual(
    lines.map((l) => [l.label, l.color, Boolean(l.dash)]),
    [
      ["deletion, CAM", "a", false],
      ["deletion, random", "a", true],
      ["insertion, CAM", "c", false],
      ["insertion, random", "c", true],
    ],
  );
  assert.deepEqual(lines[0].xs, [0, 50, 100]);
  assert.deepEqual(lines[1].ys, [0.9, 0.5, 0.05]);
  assert.deepEqual(curveLines(ANSWER, 1, ["a", "b", "c"]), []); // no curves logged at this step
});
