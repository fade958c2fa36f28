// Logged steps and the layers of runs (pure: no DOM, no fetching; tested in tests/frontend/).
import { naturalCompare } from "./format.js";

/** Index of the last value <= x in an ascending array (0 if x precedes them all; -1 if empty). */
export function atOrBefore(sorted, x) {
  let lo = 0;
  let hi = sorted.length - 1;
  if (hi < 0) return -1;
  if (x < sorted[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sorted[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Sorted union of several ascending step arrays. */
export function unionSteps(...lists) {
  return [...new Set(lists.flat())].sort((a, b) => a - b);
}

/**
 * Value of column `index` of a series {steps, rows} at the last step <= `step`:
 * {value, step}, both null when nothing was measured at or before `step`.
 */
export function valueAt(seriesSteps, rows, step, index) {
  if (!seriesSteps || !seriesSteps.length) return { value: null, step: null };
  const j = atOrBefore(seriesSteps, step);
  if (seriesSteps[j] > step) return { value: null, step: null };
  const row = rows[j];
  return { value: row && index < row.length ? row[index] : null, step: seriesSteps[j] };
}

/** Names of the layers of a run (an entry of api/runs/list) that logged summary kind `kind`. */
export function layersWith(run, kind) {
  return run.layers.filter((l) => l.kinds[kind]).map((l) => l.name);
}

/** The layers of several runs, each once, in natural order ("conv2" before "conv10"). */
export function layerUnion(runs, layersOf) {
  return [...new Set(runs.flatMap(layersOf))].sort(naturalCompare);
}

/** Whether `run` logged summary kind `kind` at `layer`. */
export function hasKind(run, layer, kind) {
  return run.layers.some((l) => l.name === layer && l.kinds[kind]);
}

/** The kinds a run logged at `layer` ({kind: info}; empty when none). */
export function kindsAt(run, layer) {
  return (run.layers.find((l) => l.name === layer) || { kinds: {} }).kinds;
}
