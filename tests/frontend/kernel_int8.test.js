// Big layers' kernels arrive as int8 codes with one float32 scale per filter (api/filters/kernels
// encoding=auto): decodeKernels in frontend/kernels.js turns them back into weights.
import assert from "node:assert/strict";
import { test } from "node:test";

import { base64Bytes, decodeKernels } from "../../frontend/kernels.js";

const b64 = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString("base64");

/** What the backend does (tb_cnnviz/plugin/routes/filters.quantise), for `out` filters of `per` weights. */
function quantise(weights, out) {
  const per = weights.length / out;
  const codes = new Int8Array(weights.length);
  const scales = new Float32Array(out);
  for (let f = 0; f < out; f++) {
    let top = 0;
    for (let i = f * per; i < (f + 1) * per; i++)
      if (Number.isFinite(weights[i])) top = Math.max(top, Math.abs(weights[i]));
    scales[f] = top / 127;
    for (let i = f * per; i < (f + 1) * per; i++)
      codes[i] = Number.isFinite(weights[i])
        ? scales[f] > 0
          ? Math.round(weights[i] / scales[f])
          : 0
        : -128;
  }
  return { codes, scales };
}

test("int8 kernels decode to code × their filter's scale, -128 to NaN", () => {
  const codes = new Int8Array([127, -127, 0, -128, 5, 6, 7, 8]);
  const scales = new Float32Array([0.5, 0.25]);
  const { data, scales: got } = decodeKernels({
    dtype: "int8",
    shape: [2, 1, 2, 2],
    data: b64(codes),
    scales: b64(scales),
  });
  assert.deepEqual(Array.from(data), [63.5, -63.5, 0, NaN, 1.25, 1.5, 1.75, 2]);
  assert.deepEqual(Array.from(got), [0.5, 0.25]);
});

test("a quantise / dequantise round trip keeps every weight within half its filter's scale", () => {
  const out = 8;
  const per = 4 * 3 * 3;
  const weights = new Float32Array(out * per);
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  for (let f = 0; f < out; f++) for (let i = 0; i < per; i++) weights[f * per + i] = random() * 10 ** (f - 4);
  weights[per + 3] = NaN;
  const { codes, scales } = quantise(weights, out);
  const { data } = decodeKernels({
    dtype: "int8",
    shape: [out, 4, 3, 3],
    data: b64(codes),
    scales: b64(scales),
  });
  for (let i = 0; i < weights.length; i++) {
    const f = Math.floor(i / per);
    if (Number.isNaN(weights[i])) assert.ok(Number.isNaN(data[i]));
    else
      assert.ok(
        Math.abs(data[i] - weights[i]) <= scales[f] / 2 + 1e-7 * scales[f],
        `${i}: ${data[i]} vs ${weights[i]}`,
      );
  }
});

test("float32 kernels decode as sent, with no scales", () => {
  const weights = new Float32Array([1.5, -2, 0.25, 1e-30]);
  const { data, scales } = decodeKernels({ dtype: "float32", shape: [1, 1, 2, 2], data: b64(weights) });
  assert.deepEqual(Array.from(data), Array.from(weights));
  assert.equal(scales, null);
  assert.deepEqual(Array.from(base64Bytes(b64(new Uint8Array([0, 255, 7])))), [0, 255, 7]);
});
