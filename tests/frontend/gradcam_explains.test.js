// Grad-CAM view, what a picture shows (frontend/views/gradcam/explain.js): colour-bar ticks, the class a
// map explains against the prediction, the native-resolution note and the outlier steps.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  camNumber,
  colourBarTicks,
  explainsNote,
  explainsText,
  isOutlierStep,
  nativeNote,
  outlierText,
} from "../../frontend/views/gradcam/explain.js";

const NAMES = ["circle", "square", "star"];

test("colour-bar ticks are round values from 0 to the scale's top, placed by value / top", () => {
  assert.deepEqual(
    colourBarTicks(8).map((t) => [t.value, t.t, t.text]),
    [
      [0, 0, "0"],
      [2, 0.25, "2"],
      [4, 0.5, "4"],
      [6, 0.75, "6"],
      [8, 1, "8"],
    ],
  );
  // 0.0137: steps of 0.005 stop at 0.01 (t = 0.73), so the top itself is labelled too
  const small = colourBarTicks(0.0137);
  assert.deepEqual(
    small.map((t) => t.text),
    ["0", "0.005", "0.01", "0.0137"],
  );
  assert.equal(small[3].t, 1);
  assert.ok(Math.abs(small[2].t - 0.01 / 0.0137) < 1e-12);
  // a huge scale: exponent notation, every tick within [0, 1]
  const huge = colourBarTicks(3.8e9);
  assert.deepEqual(
    huge.map((t) => t.text),
    ["0", "1e9", "2e9", "3e9", "3.8e9"],
  );
  assert.ok(huge.every((t) => t.t >= 0 && t.t <= 1));
  for (const top of [0, -1, NaN, null, Infinity]) assert.deepEqual(colourBarTicks(top), []);
});

test("camNumber: three significant digits, powers of ten for very large or small values", () => {
  assert.equal(camNumber(3.8e9), "3.8e9");
  assert.equal(camNumber(1.234e-4), "1.2e-4");
  assert.equal(camNumber(12.345), "12.3");
  assert.equal(camNumber(0), "0");
  assert.equal(camNumber(null), "–");
  assert.equal(camNumber(NaN), "–");
});

test("the class a map explains against the predicted one, marked when they differ", () => {
  const wrong = { index: 1, label: 2, target: 2, predicted: 1, probability: 0.6 };
  assert.deepEqual(explainsText(wrong, NAMES, "label"), {
    explains: "explains star (label)",
    predicted: "predicted square (60%)",
    differ: true,
  });
  const right = { index: 0, label: 0, target: 0, predicted: 0, probability: 0.9 };
  assert.equal(explainsText(right, NAMES, "label").differ, false);
  const unlabelled = { index: 0, label: null, target: 1, predicted: 1, probability: 0.5 };
  assert.equal(explainsText(unlabelled, NAMES, "predicted").explains, "explains square (predicted)");
  const unknown = { index: 0, label: null, target: null, predicted: null, probability: null };
  assert.deepEqual(explainsText(unknown, NAMES, "predicted"), {
    explains: "explains –",
    predicted: "",
    differ: false,
  });
});

test("the view says the predicted class's maps are not logged when the maps explain the labels", () => {
  const images = [
    { target: 0, predicted: 0 },
    { target: 2, predicted: 1 },
    { target: -1, predicted: null },
  ];
  assert.equal(
    explainsNote({ explains: "label", images }),
    "Maps explain the label; the predicted class's map is not logged (1 image predicted otherwise at this step).",
  );
  assert.equal(
    explainsNote({ explains: "label", images: images.slice(0, 1) }),
    "Maps explain the label; the predicted class's map is not logged.",
  );
  assert.match(explainsNote({ explains: "predicted", images }), /explain the predicted class/);
});

test("native resolution: the logged map's size against the overlay's", () => {
  assert.equal(
    nativeNote("layer4", [8, 2, 2], { width: 64, height: 64 }),
    "layer4: 2×2 map, upsampled to 64×64 for display",
  );
  assert.equal(
    nativeNote("conv", [3, 8, 8], { width: 8, height: 8 }),
    "conv: 8×8 map (stored at the input's size)",
  );
  assert.equal(
    nativeNote("conv", null, { width: 32, height: 32 }),
    "conv: raw map not logged; overlay logged at 32×32",
  );
});

test("outlier steps are named with their peak and marked by step", () => {
  const outliers = [{ step: 1200, peak: 3.8e9, images: [0] }];
  assert.equal(
    outlierText(outliers),
    "step 1200: peak 3.8e9, above the shared scale (clipped in the raw colouring; the scale ignores it)",
  );
  assert.equal(outlierText([]), "");
  assert.equal(isOutlierStep(outliers, 1200), true);
  assert.equal(isOutlierStep(outliers, 1100), false);
  assert.equal(isOutlierStep(undefined, 1200), false);
  const many = [1, 2, 3, 4, 5].map((step) => ({ step, peak: 1e9 }));
  assert.match(
    outlierText(many),
    /^step 1: peak 1e9; step 2: peak 1e9; step 3: peak 1e9 and 2 more steps, above/,
  );
});
