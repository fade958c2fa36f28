// The caches of frontend/api.js (no network: loads are plain functions) and the shell's view table.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Memo, decodeFloat32 } from "../../frontend/api.js";
import { matchViews } from "../../frontend/index.js";

test("Memo shares one in-flight load between callers", async () => {
  const memo = new Memo();
  let loads = 0;
  const load = async () => ++loads;
  const [a, b] = await Promise.all([memo.get("k", load), memo.get("k", load)]);
  assert.deepEqual([a, b, loads], [1, 1, 1]);
  assert.equal(memo.peek("k"), 1);
  assert.equal(memo.has("missing"), false);
});

test("Memo evicts the least recently used entries past its byte budget", async () => {
  const memo = new Memo(250);
  await memo.get(
    "a",
    () => "A",
    () => 100,
  );
  await memo.get(
    "b",
    () => "B",
    () => 100,
  );
  memo.peek("a"); // a is now more recent than b
  await memo.get(
    "c",
    () => "C",
    () => 100,
  );
  assert.equal(memo.has("a"), true);
  assert.equal(memo.has("b"), false);
  assert.equal(memo.has("c"), true);
  assert.equal(memo.bytes, 200);
});

test("Memo forgets a failed load so the next call tries again", async () => {
  const memo = new Memo();
  await assert.rejects(
    memo.get("k", () => {
      throw new Error("boom");
    }),
  );
  assert.equal(await memo.get("k", () => 7), 7);
});

test("decodeFloat32 reads little-endian float32 from base64", () => {
  const bytes = Buffer.from(new Float32Array([1.5, -2, 0.25]).buffer).toString("base64");
  assert.deepEqual(Array.from(decodeFloat32(bytes)), [1.5, -2, 0.25]);
});

test("the shell shows the table's views that have a module, in the table's order, and reports the rest", () => {
  const warnings = [];
  const warn = console.warn;
  console.warn = (text) => warnings.push(text);
  try {
    const rows = [
      { name: "dead", title: "Dead filters", hint: "h1" },
      { name: "future", title: "Future", hint: "h2" },
      { name: "filters", title: "Filters", hint: "h3" },
    ];
    const shown = matchViews(rows, { filters: { id: 1 }, dead: { id: 2 }, orphan: { id: 3 } });
    assert.deepEqual(
      shown.map((v) => [v.name, v.title, v.module.id]),
      [
        ["dead", "Dead filters", 2],
        ["filters", "Filters", 1],
      ],
    );
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /"future".*no module/);
    assert.match(warnings[1], /"orphan".*no row/);
  } finally {
    console.warn = warn;
  }
});
