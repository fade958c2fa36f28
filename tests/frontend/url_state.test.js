// The tab's state in a URL fragment (frontend/url_state.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  decodeState,
  encodeState,
  tensorBoardHashValue,
  tensorBoardTab,
  withTensorBoardHashValue,
} from "../../frontend/url_state.js";

const FULL = {
  view: "filters",
  run: "exp 1/a&b=c#d",
  compare: ["<img src=x onerror=alert(1)>", "exp,2", "exp 3"],
  layer: "features.conv1",
  layers: ["", "conv1", ""],
  sync: "fraction",
  step: 400,
  filter: 3,
  image: 0,
};

test("a state survives encoding and decoding, odd run names included", () => {
  assert.deepEqual(decodeState(encodeState(FULL)), FULL);
  assert.deepEqual(decodeState("#" + encodeState(FULL)), FULL);
  assert.deepEqual(decodeState(encodeState({ view: "dead", step: 0 })), { view: "dead", step: 0 });
  assert.equal(encodeState({ view: "dead", run: "a", compare: "", step: null }), "view=dead&run=a");
});

test("a comparison of up to 4 runs: repeated compare keys, per-run layers only when one was picked", () => {
  assert.equal(
    encodeState({ run: "a", compare: ["b", "", "c"], layers: ["", "", ""] }),
    "run=a&compare=b&compare=c",
  );
  assert.equal(encodeState({ run: "a", compare: "b" }), "run=a&compare=b"); // one run as a string too
  assert.deepEqual(decodeState("run=a&compare=b"), { run: "a", compare: ["b"] });
  assert.deepEqual(decodeState("compare=b&compare=c&compare=d&compare=e").compare, ["b", "c", "d"]); // 4 runs at most
  assert.deepEqual(decodeState("layers=&layers=x").layers, ["", "x"]);
  assert.equal(decodeState("layers=&layers=").layers, undefined);
});

test("decodeState keeps only whole non-negative counts and known keys", () => {
  assert.deepEqual(decodeState("view=x&step=abc&filter=-1&image=2.5&other=1&layer="), { view: "x" });
  assert.deepEqual(decodeState(""), {});
  assert.deepEqual(decodeState(null), {});
  assert.equal(encodeState({ step: 1.5, filter: -2, image: NaN }), "");
});

test("the state rides in TensorBoard's fragment as one key, the rest kept", () => {
  const inner = encodeState(FULL);
  const hash = withTensorBoardHashValue("#cnnviz", inner);
  assert.ok(hash.startsWith("#cnnviz&cnnviz="));
  assert.ok(!/[&=]/.test(hash.slice("#cnnviz&cnnviz=".length)), hash); // one component for TensorBoard
  assert.equal(tensorBoardHashValue(hash), inner);
  assert.deepEqual(decodeState(tensorBoardHashValue(hash)), FULL);

  const other = withTensorBoardHashValue("#cnnviz&runFilter=abc&cnnviz=old", "view=dead");
  assert.equal(other, "#cnnviz&runFilter=abc&cnnviz=view%3Ddead");
  assert.equal(withTensorBoardHashValue(other, ""), "#cnnviz&runFilter=abc");
  assert.equal(withTensorBoardHashValue("", "view=dead"), "#&cnnviz=view%3Ddead");
  assert.equal(tensorBoardHashValue("#cnnviz"), null);
  assert.equal(tensorBoardHashValue("#cnnviz&cnnviz=%E0%A4%A"), null); // malformed escape: ignored
});

test("tensorBoardTab names TensorBoard's active plugin", () => {
  assert.equal(tensorBoardTab("#cnnviz&cnnviz=view%3Ddead"), "cnnviz");
  assert.equal(tensorBoardTab("#timeseries&cnnviz=view%3Ddead"), "timeseries");
  assert.equal(tensorBoardTab(""), "");
});
