// Grad-CAM view, "explain the predicted class" (issue #16): what the cards and the view's line say when the
// maps of each image's predicted class are shown (frontend/views/gradcam/explain.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { explainsNote, explainsText, predictedItem } from "../../frontend/views/gradcam/explain.js";

const NAMES = ["circle", "square", "star"];
const images = [
  { index: 0, label: 0, target: 0, predicted: 0, probability: 0.9, target_probability: 0.9, cam_max: 8 },
  { index: 1, label: 2, target: 2, predicted: 1, probability: 0.6, target_probability: 0.3, cam_max: 4 },
];

test("the view's line names the class the maps explain and the switch", () => {
  const data = { explains: "label", predicted_maps_logged: true, images };
  assert.equal(
    explainsNote(data),
    'Maps explain the label (1 image predicted otherwise at this step); "Explain: predicted class" shows the predicted class\'s maps.',
  );
  assert.equal(
    explainsNote(data, "predicted"),
    "Maps explain each image's predicted class (1 image predicted otherwise at this step); \"Explain: label\" shows the label's.",
  );
  // a run without them (before #16) says so, whatever was asked
  assert.match(
    explainsNote({ ...data, predicted_maps_logged: false }, "target"),
    /predicted class's map is not logged/,
  );
});

test("a card explaining the predicted class: that class, its map's peak, scale and outlier flag", () => {
  const maps = {
    shape: [2, 2, 2],
    values: Float32Array.from([1, 2, 3, NaN, 0.5, 9, -1, 0]),
    scale: [3, 4],
    outlier_steps: [{ step: 50, peak: 9, images: [1] }],
  };
  const second = predictedItem(images[1], maps, 50);
  assert.equal(second.target, 1); // the predicted square, not the labelled star
  assert.equal(second.cam_max, 9);
  assert.equal(second.cam_scale, 4);
  assert.equal(second.cam_clipped, true);
  assert.equal(predictedItem(images[1], maps, 40).cam_clipped, false);
  assert.equal(predictedItem(images[0], maps, 50).cam_max, 3); // NaN skipped
  const said = explainsText(second, NAMES, "predicted");
  assert.deepEqual(said, {
    explains: "explains square (predicted)",
    predicted: "predicted square (60%)",
    differ: false,
  });
  assert.equal(images[1].target, 2, "the logged item is not changed");
});
