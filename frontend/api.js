// Talking to the plugin's backend routes (tb_cnnviz/plugin_routes.py), with caches.
//
// URLs are relative to this module (…/data/plugin/cnnviz/), so the UI works under any
// TensorBoard path prefix and inside the plugin iframe. Two caches:
//  * `series` — listings and per-layer series that grow while training runs; cleared on reload;
//  * `stable` — data of one logged step (kernels, PNGs), which never changes; LRU by bytes,
//    so scrubbing back and forth over hundreds of steps costs no request after the first pass.

const ROOT = new URL("./", import.meta.url);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Absolute URL of a plugin route, e.g. apiUrl("api/runs/list", {run: "a"}). */
export function apiUrl(path, params = {}) {
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

export const series = new Memo();
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

// ------------------------------------------------------------------ kernels by blocks of steps
const BLOCK_VALUES = 1 << 18; // floats per request when prefetching (1 MiB)
const perStepValues = new Map(); // run|layer -> floats per step

function kernelKey(run, layer, step) {
  return `k:${run}\u0000${layer}\u0000${step}`;
}

/** Kernels {shape, data: Float32Array, step} at a logged step, from memory when possible. */
export function peekKernels(run, layer, step) {
  return stable.peek(kernelKey(run, layer, step));
}

/**
 * Load the kernels at `steps[index]`, fetching the aligned block of steps around it in one
 * request so neighbouring steps are already in memory when the slider moves on.
 */
export function kernels(run, layer, steps, index) {
  const step = steps[index];
  const key = kernelKey(run, layer, step);
  if (stable.entries.has(key)) return stable.get(key, () => null);
  const size = perStepValues.get(`${run}\u0000${layer}`);
  const block = size ? Math.max(1, Math.floor(BLOCK_VALUES / size)) : 16;
  const start = Math.floor(index / block) * block;
  const first = steps[start];
  const load = getJSON("api/filters/kernels", { run, layer, step: first, count: block }).then((answer) => {
    const all = decodeFloat32(answer.data);
    const per = answer.shape.reduce((a, b) => a * b, 1);
    perStepValues.set(`${run}\u0000${layer}`, per);
    const out = new Map();
    answer.steps.forEach((s, i) => {
      const value = { step: s, shape: answer.shape, data: all.subarray(i * per, (i + 1) * per) };
      out.set(s, value);
      if (s !== step) stable.set(kernelKey(run, layer, s), value, per * 4);
    });
    return out;
  });
  // The requested step resolves from the block (or alone, if the block ended before it).
  return stable.get(
    key,
    async () => {
      const got = await load;
      if (got.has(step)) return got.get(step);
      const answer = await getJSON("api/filters/kernels", { run, layer, step, count: 1 });
      return { step, shape: answer.shape, data: decodeFloat32(answer.data) };
    },
    (v) => v.data.length * 4,
  );
}
