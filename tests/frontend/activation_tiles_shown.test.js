import { test } from "node:test";
import assert from "node:assert/strict";
import { tileAt } from "../../frontend/views/activations/index.js";

test("activation tiles of a capped grid: tile i is channel shown[i], none past the last shown tile", () => {
  // 2048 channels, 4 shown (2 per row): tiles 0..3 are channels 5, 17, 900, 2047
  const layout = { nrow: 2, padding: 1, tile: [3, 3], channels: 2048, shown: [5, 17, 900, 2047] };
  assert.equal(tileAt(layout, 2, 2), 5);
  assert.equal(tileAt(layout, 1 + 4 + 2, 2), 17);
  assert.equal(tileAt(layout, 2, 1 + 4 + 2), 900);
  assert.equal(tileAt(layout, 1 + 4 + 2, 1 + 4 + 2), 2047);
  assert.equal(tileAt(layout, 2, 1 + 4 * 2 + 2), -1); // a third row would be tile 4: not shown
  assert.equal(tileAt(layout, 1 + 4 * 2 + 2, 2), -1); // past the last column
});
