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

// ------------------------------------------------------------ comparing runs

/** The ways a comparison lines the runs up: the same step, the same fraction of each run's training, the same epoch. */
export const SYNC_MODES = ["step", "fraction", "epoch"];

/**
 * The steps at which each epoch of `run` ended, ascending (its listing's `epoch_ends`), or [] when
 * the run logs no epochs (the callback logs steps only unless told the epochs).
 */
export function epochEnds(run) {
  const ends = run && Array.isArray(run.epoch_ends) ? run.epoch_ends : [];
  return ends.filter((s) => Number.isFinite(s)).sort((a, b) => a - b);
}

/** Whether every run in `runs` logs epochs (needed to line them up by epoch). */
export function logsEpochs(runs) {
  return runs.length > 0 && runs.every((run) => epochEnds(run).length > 0);
}

/**
 * Where `step` lies in the training of a run whose logged steps are `steps`, under sync `mode`:
 * the step itself ("step"); step / the run's last step ("fraction", 1 for a run whose last step is 0);
 * epochs done, fractional within an epoch, from the run's `epochEnds` ("epoch"; after its last epoch end,
 * an epoch under way counts as long as the last one).
 */
export function trainingPosition(mode, step, steps, ends = []) {
  if (mode === "fraction") {
    const last = steps.length ? steps[steps.length - 1] : 0;
    return last > 0 ? step / last : 1;
  }
  if (mode === "epoch") {
    const bounds = [0, ...ends];
    for (let e = 1; e < bounds.length; e++)
      if (step <= bounds[e]) return e - 1 + (step - bounds[e - 1]) / Math.max(1, bounds[e] - bounds[e - 1]);
    // past the last epoch end (an epoch under way): as long as the last one
    const n = ends.length;
    if (!n) return step;
    return n + (step - bounds[n]) / Math.max(1, bounds[n] - bounds[n - 1]);
  }
  return step;
}

/** The inverse of trainingPosition: the step of a run at training position `position`. */
export function stepAtPosition(mode, position, steps, ends = []) {
  if (mode === "fraction") return position * (steps.length ? steps[steps.length - 1] : 0);
  if (mode === "epoch") {
    if (!ends.length) return position;
    const e = Math.min(Math.floor(position), ends.length - 1);
    const start = e === 0 ? 0 : ends[e - 1];
    return start + (position - e) * (ends[e] - start);
  }
  return position;
}

/**
 * What a compared panel shows when the slider is at `sliderStep` of the reference run: the step
 * asked of this run (`target`, the slider's step carried over by `mode`) and the index and value of
 * its last logged step at or before it (`index` -1 and `step` null without steps). `ref` and `own`
 * are {steps, ends} of the reference run and of this run.
 */
export function panelStep(mode, sliderStep, ref, own) {
  const position = trainingPosition(mode, sliderStep, ref.steps, ref.ends || []);
  // Rounded to 1e-9 so that 0.3 * 10 lands on step 3, not before it.
  const target = Math.round(stepAtPosition(mode, position, own.steps, own.ends || []) * 1e9) / 1e9;
  const index = atOrBefore(own.steps, target);
  return { position, target, index, step: index < 0 ? null : own.steps[index] };
}

/**
 * `layers` of `run` in the model's order: the order of the run's `layer_order` record (its listing's
 * `kinds.layer_order.layers`, logged by the callback in the order of the model's modules), the layers it
 * does not name after them in their given order. Without the record: `layers` as given.
 */
export function modelOrder(run, layers) {
  const record = run && run.kinds && run.kinds.layer_order;
  const order = record && Array.isArray(record.layers) ? record.layers : [];
  if (!order.length) return [...layers];
  const rank = new Map(order.map((name, i) => [name, i]));
  const at = (name) => (rank.has(name) ? rank.get(name) : order.length);
  return layers
    .map((name, i) => ({ name, i }))
    .sort((a, b) => at(a.name) - at(b.name) || a.i - b.i)
    .map((entry) => entry.name);
}

/**
 * The layer of another run in the same role as `layer` of the reference run: the same name when the
 * other run has it, else the same relative position in the runs' own layer lists (first to first,
 * last to last), so two architectures line up. `refLayers` and `runLayers` are in model order
 * (`modelOrder`; a run without that record: the natural order of the names).
 */
export function roleLayer(refLayers, layer, runLayers) {
  if (!runLayers.length) return null;
  if (runLayers.includes(layer)) return layer;
  const i = refLayers.indexOf(layer);
  if (i < 0 || refLayers.length === 1) return runLayers[0];
  return runLayers[Math.round((i * (runLayers.length - 1)) / (refLayers.length - 1))];
}

const percent = (x) => `${Math.round(x * 100)}%`;

/**
 * What a compared panel says about its step: "step 40", or why it is not the slider's step
 * ("step 1 · the slider is at step 160: this run's last logged step at or before it"; under
 * "fraction" the share of each run's training). `at` is panelStep's answer, `slider` the slider's
 * step, `last` the run's last logged step, `refName` the run whose steps the slider moves over.
 */
export function panelStepNote(mode, slider, at, last, refName) {
  if (at.step === null) return "no step logged";
  if (mode === "fraction") {
    const own = `step ${at.step} of ${last} (${percent(last > 0 ? at.step / last : 1)} of its training)`;
    return `${own} · slider: step ${slider} = ${percent(at.position)} of ${refName}'s`;
  }
  if (mode === "epoch")
    return `step ${at.step} · slider: step ${slider} of ${refName}, epoch ${at.position.toFixed(2)}`;
  if (at.step === slider) return `step ${at.step}`;
  if (at.step > slider)
    return `step ${at.step} · the slider is at step ${slider}: this run logged nothing that early`;
  return `step ${at.step} · the slider is at step ${slider}: this run's last logged step at or before it`;
}
