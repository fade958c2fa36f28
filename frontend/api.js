// Talking to the plugin's backend routes (tb_cnnviz/plugin/routes/), with caches; no DOM.
// Each view's own requests are in views/<view>/data.js.
//
// URLs are relative to this module (…/data/plugin/cnnviz/), so the UI works under any
// TensorBoard path prefix and inside the plugin iframe. Two caches:
//  * `series` — listings and per-layer series that grow while training runs; cleared on reload;
//  * `stable` — data of one logged step (kernels, PNGs), which never changes; LRU by bytes,
//    so scrubbing back and forth over hundreds of steps costs no request after the first pass.

import { hasKind } from "./steps.js";

const ROOT = new URL("./", import.meta.url);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Absolute URL of a plugin route, e.g. apiUrl("api/runs/list", {run: "a"}). */
function apiUrl(path, params = {}) {
  const u = new URL(path, ROOT);
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  return u.href;
}

async function fetchOk(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin" });
  } catch (error) {
    throw new ApiError(0, `TensorBoard did not answer (${error.message})`);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      if (body && body.error) detail = body.error;
    } catch (_) {
      /* not JSON */
    }
    throw new ApiError(response.status, detail);
  }
  return response;
}

export async function getJSON(path, params) {
  return (await fetchOk(apiUrl(path, params))).json();
}

/** Float32Array from base64 little-endian float32 (what filters/kernels sends). */
export function decodeFloat32(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

/** Promise memo with in-flight de-duplication and an optional byte budget (LRU). */
export class Memo {
  constructor(maxBytes = Infinity) {
    this.maxBytes = maxBytes;
    this.bytes = 0;
    this.entries = new Map(); // key -> {promise, value, size, done}
  }
  has(key) {
    const e = this.entries.get(key);
    return Boolean(e && e.done);
  }
  peek(key) {
    const e = this.entries.get(key);
    if (!e || !e.done) return undefined;
    this.entries.delete(key); // refresh LRU position
    this.entries.set(key, e);
    return e.value;
  }
  get(key, load, sizeOf = () => 0) {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.promise;
    }
    const entry = { done: false, size: 0 };
    entry.promise = Promise.resolve()
      .then(load)
      .then(
        (value) => {
          entry.value = value;
          entry.done = true;
          entry.size = sizeOf(value) || 0;
          if (this.entries.get(key) === entry) {
            this.bytes += entry.size;
            this.evict();
          }
          return value;
        },
        (error) => {
          if (this.entries.get(key) === entry) this.entries.delete(key);
          throw error;
        },
      );
    this.entries.set(key, entry);
    return entry.promise;
  }
  set(key, value, size = 0) {
    const old = this.entries.get(key);
    if (old && old.done) this.bytes -= old.size;
    this.entries.delete(key);
    this.entries.set(key, { done: true, value, size, promise: Promise.resolve(value) });
    this.bytes += size;
    this.evict();
  }
  evict() {
    for (const [key, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      if (!e.done) continue;
      this.entries.delete(key);
      this.bytes -= e.size;
    }
  }
  clear() {
    this.entries.clear();
    this.bytes = 0;
  }
}

const series = new Memo();
export const stable = new Memo(192 * 1024 * 1024);

/** Cached JSON of a route whose answer grows with training (cleared by `reloadSeries`). */
export function seriesJSON(path, params) {
  return series.get(`${path}?${new URLSearchParams(params)}`, () => getJSON(path, params));
}

export function reloadSeries() {
  series.clear();
}

/** Decoded image of a PNG route (an ImageBitmap), cached; `relative` is from the plugin root. */
export function bitmap(relative) {
  return stable.get(
    `img:${relative}`,
    async () => {
      const blob = await (await fetchOk(new URL(relative, ROOT).href)).blob();
      return createImageBitmap(blob);
    },
    (b) => b.width * b.height * 4,
  );
}

export function peekBitmap(relative) {
  return stable.peek(`img:${relative}`);
}

const stepKey = (route, run, layer, step) => `${route}\u0000${run}\u0000${layer}\u0000${step}`;

/** A route's JSON for one logged step of a run's layer: it never changes, so it stays in `stable`. */
export function stepJSON(route, run, layer, step, size = 4096) {
  return stable.get(
    stepKey(route, run, layer, step),
    () => getJSON(route, { run, layer, step }),
    () => size,
  );
}

/** The same answer when it is already in memory, else undefined. */
export function peekStepJSON(route, run, layer, step) {
  return stable.peek(stepKey(route, run, layer, step));
}

/** Logged steps of `kind` at `layer` in `run` (an entry of api/runs/list): none where it logged none. */
export async function loggedSteps(run, kind, layer) {
  if (!hasKind(run, layer, kind)) return [];
  return (await seriesJSON("api/runs/steps", { run: run.name, kind, layer })).steps;
}

/** Sprite layout and atlas URLs of a run (an entry of api/runs/list); null when it logged none. */
export function sprites(run) {
  return stable.get(
    `sprites:${run.name}`,
    async () => {
      if (!run.kinds || !run.kinds.sprites) return null;
      // The atlases' URLs only: sprites.js loads an atlas when one of its thumbnails is first shown.
      return getJSON("api/embedding/sprites", { run: run.name });
    },
    () => 1024,
  );
}
