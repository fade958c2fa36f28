// Helpers that let the views scale to deep models: layer grouping and search (frontend/widgets.js),
// paging, and the Dead view's layers × steps table (frontend/views/dead/layer_map.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { filterLayers, groupLayers, pageBounds, stageOf } from "../../frontend/widgets.js";
import { cellText, fractionTable, mapLayout, sortRows } from "../../frontend/views/dead/layer_map.js";

const RESNET = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.downsample.0", "layer1.1.conv1", "fc"];

test("a layer's stage is its name before the last dotted part", () => {
  assert.equal(stageOf("layer4.2.conv3"), "layer4.2");
  assert.equal(stageOf("layer1.0.downsample.0"), "layer1.0.downsample");
  assert.equal(stageOf("conv1"), "");
});

test("layers group by consecutive stage, in their order", () => {
  assert.deepEqual(groupLayers(RESNET), [
    { stage: "", layers: ["conv1"] },
    { stage: "layer1.0", layers: ["layer1.0.conv1", "layer1.0.conv2"] },
    { stage: "layer1.0.downsample", layers: ["layer1.0.downsample.0"] },
    { stage: "layer1.1", layers: ["layer1.1.conv1"] },
    { stage: "", layers: ["fc"] },
  ]);
  assert.deepEqual(groupLayers([]), []);
});

test("the layer search keeps the layers containing every word, case-insensitive", () => {
  assert.deepEqual(filterLayers(RESNET, "CONV1"), ["conv1", "layer1.0.conv1", "layer1.1.conv1"]);
  assert.deepEqual(filterLayers(RESNET, "layer1 conv1"), ["layer1.0.conv1", "layer1.1.conv1"]);
  assert.deepEqual(filterLayers(RESNET, "  "), RESNET);
  assert.deepEqual(filterLayers(RESNET, "layer9"), []);
});

test("pages cover every item once and clamp the page asked for", () => {
  const seen = [];
  const { pages } = pageBounds(2048, 128, 0);
  assert.equal(pages, 16);
  for (let p = 0; p < pages; p++) {
    const b = pageBounds(2048, 128, p);
    for (let i = b.start; i < b.stop; i++) seen.push(i);
  }
  assert.deepEqual(
    seen,
    Array.from({ length: 2048 }, (_, i) => i),
  );
  assert.deepEqual(pageBounds(130, 128, 5), { page: 1, pages: 2, start: 128, stop: 130 });
  assert.deepEqual(pageBounds(130, 128, -3), { page: 0, pages: 2, start: 0, stop: 128 });
  assert.deepEqual(pageBounds(0, 128, 0), { page: 0, pages: 1, start: 0, stop: 0 });
});

const FRACTIONS = [
  { layer: "conv1", semantics: "relu", steps: [10, 20], dead_fraction: [0, 0.25], filters: 8 },
  {
    layer: "layer1.0.conv3",
    semantics: "residual",
    steps: [10, 20],
    dead_fraction: [null, null],
    filters: 16,
  },
  { layer: "layer1.1.conv1", semantics: "smooth", steps: [20, 30], dead_fraction: [0.5, null], filters: 4 },
];

test("the fraction table is over the union of steps, null where not measured or not defined", () => {
  const { steps, rows } = fractionTable(FRACTIONS);
  assert.deepEqual(steps, [10, 20, 30]);
  assert.deepEqual(
    rows.map((r) => [r.layer, r.values, r.latest]),
    [
      ["conv1", [0, 0.25, null], 0.25],
      ["layer1.0.conv3", [null, null, null], null],
      ["layer1.1.conv1", [null, 0.5, null], 0.5],
    ],
  );
});

test("rows sort by layer order or by latest dead fraction (undefined last)", () => {
  const { rows } = fractionTable(FRACTIONS);
  const names = (by) => sortRows(rows, by).map((r) => r.layer);
  assert.deepEqual(names("latest"), ["layer1.1.conv1", "conv1", "layer1.0.conv3"]);
  assert.deepEqual(names("order"), ["conv1", "layer1.0.conv3", "layer1.1.conv1"]);
  assert.deepEqual(
    sortRows(sortRows(rows, "latest"), "order").map((r) => r.layer),
    names("order"),
  );
});

test("a cell's text names layer, step and value, or why there is none", () => {
  const { steps, rows } = fractionTable(FRACTIONS);
  assert.equal(cellText(rows[0], steps[1], 1), "conv1 · step 20 · dead fraction 0.250 (2 of 8 filters)");
  assert.equal(cellText(rows[0], steps[2], 2), "conv1 · step 30 · not measured at this step");
  assert.equal(
    cellText(rows[1], steps[0], 0),
    "layer1.0.conv3 · step 10 · residual: no dead filters defined",
  );
  assert.equal(
    cellText(rows[2], steps[1], 1),
    "layer1.1.conv1 · step 20 · inactive fraction 0.500 (2 of 4 filters)",
  );
});

test("the map of 53 layers stays under 560 px tall and within its width", () => {
  const L = mapLayout(53, 30, 560);
  assert.ok(L.height <= 560, L.height);
  assert.ok(L.width <= 560, L.width);
  assert.ok(L.cellH >= 6);
});
