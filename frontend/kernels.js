// Kernels as pictures: input-channel modes, normalisation to [0, 1] and the grid's layout
// (pure: no DOM; tested in tests/frontend/). Drawing is in draw.js.

const pixelCache = new WeakMap();

/** Input-channel modes available for a kernel with `inChannels` inputs. */
export function inputModes(inChannels) {
  const modes = [];
  if (inChannels === 3) modes.push({ value: "rgb", label: "RGB" });
  if (inChannels > 1) modes.push({ value: "mean", label: "mean of inputs" });
  const shown = Math.min(inChannels, 64);
  for (let c = 0; c < shown; c++) modes.push({ value: `c${c}`, label: `input ${c}` });
  return modes;
}

/** Per-filter values [out, kh, kw, ch] from raw weights [out, in, kh, kw] for one input mode. */
function filterValues(kernel, inputMode) {
  const [out, inC, kh, kw] = kernel.shape;
  const d = kernel.data;
  const area = kh * kw;
  const rgb = inputMode === "rgb" && inC === 3;
  const ch = rgb ? 3 : 1;
  const values = new Float32Array(out * area * ch);
  const channel =
    inputMode && inputMode.startsWith("c") ? Math.min(inC - 1, parseInt(inputMode.slice(1), 10) || 0) : -1;
  for (let f = 0; f < out; f++) {
    const base = f * inC * area;
    for (let p = 0; p < area; p++) {
      if (rgb) {
        for (let c = 0; c < 3; c++) values[(f * area + p) * 3 + c] = d[base + c * area + p];
      } else if (channel >= 0 || inC === 1) {
        values[f * area + p] = d[base + Math.max(channel, 0) * area + p];
      } else {
        let s = 0;
        for (let c = 0; c < inC; c++) s += d[base + c * area + p];
        values[f * area + p] = s / inC;
      }
    }
  }
  return { out, kh, kw, ch, values };
}

/** Stretch values[from, to) to [0, 1] by their finite min and max (0.5 when constant, NaN stays NaN). */
export function normalizeRange(values, from, to) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = from; i < to; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const span = hi - lo;
  for (let i = from; i < to; i++) {
    const v = values[i];
    values[i] = !Number.isFinite(v) ? NaN : span > 0 ? (v - lo) / span : 0.5;
  }
}

/**
 * Per-filter pixels in [0, 1] from raw weights [out, in, kh, kw] (cached per kernel and mode).
 * normalization "global": (w - min) / (max - min) over the whole layer (filters comparable);
 * "per_filter": the same per filter (shows each filter's pattern at full contrast).
 */
export function filterPixels(kernel, normalization, inputMode) {
  const key = `${normalization}|${inputMode}`;
  let byKernel = pixelCache.get(kernel);
  if (!byKernel) pixelCache.set(kernel, (byKernel = new Map()));
  if (byKernel.has(key)) return byKernel.get(key);
  const result = filterValues(kernel, inputMode);
  const { out, kh, kw, ch, values } = result;
  const per = kh * kw * ch;
  if (normalization === "per_filter")
    for (let f = 0; f < out; f++) normalizeRange(values, f * per, (f + 1) * per);
  else normalizeRange(values, 0, values.length);
  byKernel.set(key, result);
  return result;
}

/** Layout of a grid of `out` filters of kh×kw about `target` CSS px wide, cells integer-scaled (crisp). */
export function kernelGridLayout(out, kh, kw, target) {
  const cols = Math.ceil(Math.sqrt(out));
  const rows = Math.ceil(out / cols);
  const gap = 2;
  const scale = Math.max(1, Math.floor((target - gap * (cols + 1)) / (cols * kw)));
  const cellW = kw * scale;
  const cellH = kh * scale;
  return {
    cols,
    rows,
    cellW,
    cellH,
    gap,
    out,
    scale,
    width: cols * cellW + gap * (cols + 1),
    height: rows * cellH + gap * (rows + 1),
  };
}

/** Top-left corner of filter `f`'s cell in a kernel grid. */
export function cellOrigin(layout, f) {
  const { cols, cellW, cellH, gap } = layout;
  return [gap + (f % cols) * (cellW + gap), gap + Math.floor(f / cols) * (cellH + gap)];
}

/** Filter index under a click at (x, y) pixels of a kernel grid, or -1. */
export function hitKernelGrid(layout, x, y) {
  const { cols, cellW, cellH, gap, out } = layout;
  const col = Math.floor((x - gap / 2) / (cellW + gap));
  const row = Math.floor((y - gap / 2) / (cellH + gap));
  const f = row * cols + col;
  return col >= 0 && col < cols && row >= 0 && f < out ? f : -1;
}

/** Min, max and L2 norm of filter `f`'s raw weights. */
export function weightStats(kernel, f) {
  const per = kernel.shape[1] * kernel.shape[2] * kernel.shape[3];
  const w = kernel.data.subarray(f * per, (f + 1) * per);
  let lo = Infinity;
  let hi = -Infinity;
  let ss = 0;
  for (const v of w) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
    ss += v * v;
  }
  return { min: lo, max: hi, norm: Math.sqrt(ss) };
}

/** Bytes of a base64 string (the browser's native decoder where it has one: 3 MB in a few ms). */
export function base64Bytes(base64) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(base64);
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Float32Array of the weights of an api/filters/kernels answer: float32 as sent, or int8 codes
 * times their filter's scale (dtype "int8": `scales` is one float32 per step and filter; the code
 * -128 is a non-finite weight, NaN here). Also returns the scales (null for float32).
 */
export function decodeKernels(answer) {
  const bytes = base64Bytes(answer.data);
  if (answer.dtype !== "int8") return { data: new Float32Array(bytes.buffer), scales: null };
  const scales = new Float32Array(base64Bytes(answer.scales).buffer);
  const per = answer.shape.slice(1).reduce((a, b) => a * b, 1); // weights per filter
  const data = new Float32Array(bytes.length);
  const value = new Float32Array(256); // per filter: byte -> weight (byte 128 is code -128: NaN)
  for (let f = 0; f < scales.length; f++) {
    const s = scales[f];
    for (let b = 0; b < 256; b++) value[b] = b === 128 ? NaN : (b < 128 ? b : b - 256) * s;
    for (let i = f * per, end = i + per; i < end; i++) data[i] = value[bytes[i]];
  }
  return { data, scales };
}
