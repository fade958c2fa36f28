// Text of numbers, steps, classes and runs (frontend/format.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  className,
  formatNumber,
  labelText,
  naturalCompare,
  percent,
  precise,
  runNames,
  stepNote,
} from "../../frontend/format.js";

test("formatNumber rounds to the digits asked and shows a dash for no number", () => {
  assert.equal(formatNumber(0.12345), "0.123");
  assert.equal(formatNumber(2 / 3, 2), "0.67");
  assert.equal(formatNumber(-1.5, 0), "-2");
  assert.equal(formatNumber(null), "–");
  assert.equal(formatNumber(undefined), "–");
  assert.equal(formatNumber(NaN), "–");
  assert.equal(formatNumber(0), "0.000");
});

test("percent and precise", () => {
  assert.equal(percent(0.376), "38%");
  assert.equal(percent(1), "100%");
  assert.equal(percent(0), "0%");
  assert.equal(percent(null), "–");
  assert.equal(precise(1234.5), "1.23e+3");
  assert.equal(precise(0.012345), "0.0123");
  assert.equal(precise(undefined), "–");
});

test("stepNote says when the shown step is an earlier one", () => {
  assert.equal(stepNote(40, 40), "step 40");
  assert.equal(stepNote(40, 45), "step 40 (last logged at or before 45)");
  assert.equal(stepNote(200, 250, "measured"), "step 200 (last measured at or before 250)");
});

test("className: the name, else 'class i', else nothing", () => {
  assert.equal(className(["circle", "square"], 1), "square");
  assert.equal(className(["circle"], 4), "class 4");
  assert.equal(className(null, 2), "class 2");
  assert.equal(className(["circle"], -1), "");
  assert.equal(className(["circle"], null), "");
});

test("labelText of a probe image", () => {
  const probe = { labels: [2, null, 0], class_names: ["circle", "square", "triangle"] };
  assert.equal(labelText(probe, 0), "triangle (2)");
  assert.equal(labelText(probe, 1), "");
  assert.equal(labelText({ labels: [3] }, 0), "label 3");
  assert.equal(labelText(null, 0), "");
  assert.equal(labelText({ labels: null, names: ["cat.jpg"] }, 0), "cat.jpg");
  assert.equal(labelText({ ...probe, names: ["a.png", "b.png", "c.png"] }, 0), "a.png · triangle (2)");
  assert.equal(labelText({ ...probe, names: ["a.png"] }, 2), "circle (0)");
});

test("runNames and natural order of layer names", () => {
  assert.equal(runNames([{ name: "a" }, { name: "b" }]), "a or b");
  assert.equal(runNames([]), "this run");
  const layers = ["features.conv10", "features.conv2", "features.conv1"];
  assert.deepEqual(layers.sort(naturalCompare), ["features.conv1", "features.conv2", "features.conv10"]);
});
