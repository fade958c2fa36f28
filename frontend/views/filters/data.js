// Filters view, data: the kernels of a layer by blocks of steps (kept in memory, so the slider
// scrubs without requests), the smoothness series and the activation rates. No DOM here.
import { getJSON, loggedSteps, seriesJSON, stable } from "../../api.js";
import { decodeKernels } from "../../kernels.js";
import { kindsAt } from "../../steps.js";

/** What a panel needs when the runs or the layer change: {steps, smooth, rates} (null where not logged). */
export async function filterSeries(run, layer) {
  const kinds = kindsAt(run, layer);
  const [steps, smooth, rates] = await Promise.all([
    loggedSteps(run, "kernels", layer),
    kinds.smoothness ? seriesJSON("api/filters/smoothness", { run: run.name, layer }) : null,
    kinds.dead_filters ? seriesJSON("api/dead/rates", { run: run.name, layer }) : null,
  ]);
  return { steps, smooth, rates };
}

const BLOCK_VALUES = 1 << 18; // floats per request when prefetching (1 MiB)
const perStepValues = new Map(); // run|layer -> floats per step

function kernelKey(run, layer, step) {
  return `k:${run}\u0000${layer}\u0000${step}`;
}

// Big layers come as int8 with a scale per filter (encoding "auto": the backend quantises above
// 65,536 weights per step; a ResNet-50's 512×512×3×3 conv is 3.1 MB a step instead of 12.6 MB).
const ENCODING = "auto";

/** One step of a kernels answer: {step, shape, data: Float32Array, scales: per-filter int8 scale or null}. */
function stepOf(answer, decoded, i, per) {
  const out = answer.shape[0];
  return {
    step: answer.steps[i],
    shape: answer.shape,
    data: decoded.data.subarray(i * per, (i + 1) * per),
    scales: decoded.scales ? decoded.scales.subarray(i * out, (i + 1) * out) : null,
  };
}

/** Kernels {shape, data: Float32Array, scales, step} at a logged step, from memory when possible. */
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
  const params = { run, layer, step: first, count: block, encoding: ENCODING };
  const load = getJSON("api/filters/kernels", params).then((answer) => {
    const decoded = decodeKernels(answer);
    const per = answer.shape.reduce((a, b) => a * b, 1);
    perStepValues.set(`${run}\u0000${layer}`, per);
    const out = new Map();
    answer.steps.forEach((s, i) => {
      const value = stepOf(answer, decoded, i, per);
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
      const answer = await getJSON("api/filters/kernels", { run, layer, step, count: 1, encoding: ENCODING });
      return stepOf(
        answer,
        decodeKernels(answer),
        0,
        answer.shape.reduce((a, b) => a * b, 1),
      );
    },
    (v) => v.data.length * 4,
  );
}

/**
 * The spread of per-filter values at each step: {lo, hi, counts}, the `low` and `high` quantiles (linear
 * interpolation between order statistics) of each row's finite values; null where a row has none.
 */
export function quantileBand(rows, low = 0.1, high = 0.9) {
  const at = (sorted, q) => {
    const pos = q * (sorted.length - 1);
    const i = Math.floor(pos);
    return i + 1 < sorted.length ? sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
  };
  const band = { lo: [], hi: [], counts: [] };
  for (const row of rows) {
    const sorted = (row || []).filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
    band.lo.push(sorted.length ? at(sorted, low) : null);
    band.hi.push(sorted.length ? at(sorted, high) : null);
    band.counts.push(sorted.length);
  }
  return band;
}
