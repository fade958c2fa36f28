import assert from "node:assert/strict";
import { test } from "node:test";

import { reachedText } from "../../frontend/views/patterns/draw.js";

test("reached activation is read against the best probe image", () => {
  assert.equal(reachedText(null, 1, false, 4), "not logged");
  assert.match(reachedText(3, 1.5, false, 4), /^3\.000 at step 4 \(2(\.0+)?× the best probe image's 1\.5/);
  assert.equal(reachedText(3, null, false, 4), "3.000 at step 4");
  assert.match(
    reachedText(-0.2, null, true, 4),
    /failed: the optimisation did not drive the filter above 0$/,
  );
  assert.match(reachedText(0.5, 1, true, 4), /failed: a probe image drives the filter more$/);
});
