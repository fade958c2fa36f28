// Overview, data: one run's overview and findings (api/overview/run) and the pure helpers that turn it
// into what is drawn and linked. No DOM here (tested in tests/frontend/overview.test.js).
import { seriesJSON } from "../../api.js";
import { formatNumber } from "../../format.js";

export const SEVERITY_LABELS = { error: "error", warning: "warning", info: "note" };

/** A run's overview: {dead, smoothness, separability, faithfulness, probe_accuracy, findings, hints}. */
export function overviewData(run) {
  return seriesJSON("api/overview/run", { run: run.name });
}

/** What shell.open receives for a finding: its view and {layer, step} (null when it links nowhere). */
export function findingLink(finding, viewNames) {
  if (!finding || !finding.view || !viewNames.includes(finding.view)) return null;
  const intent = {};
  if (finding.layer) intent.layer = finding.layer;
  if (Number.isInteger(finding.step)) intent.step = finding.step;
  return { view: finding.view, intent };
}

/** Every logged step the overview draws (the shell counts the new ones after a reload). */
export function overviewSteps(data) {
  if (!data) return [];
  const lists = [
    ...((data.dead && data.dead.layers) || []).map((l) => l.steps),
    data.smoothness ? data.smoothness.steps : [],
    data.separability ? data.separability.deepest.steps : [],
    data.faithfulness ? data.faithfulness.steps : [],
    data.probe_accuracy ? data.probe_accuracy.steps : [],
  ];
  return [...new Set(lists.flat())].sort((a, b) => a - b);
}

/** The smoothness chart: the mean as a line and the mean ± one spread (standard deviation) as a band. */
export function smoothnessSpec(part, palette) {
  const band = (sign) =>
    part.mean.map((m, i) => (m === null || part.spread[i] === null ? null : m + sign * part.spread[i]));
  return {
    lines: [{ xs: part.steps, ys: part.mean, color: palette[0], label: "mean" }],
    bands: [{ xs: part.steps, lo: band(-1), hi: band(1), color: palette[0], label: "± 1 sd over filters" }],
  };
}

/** "relu2 0.41 · relu4 0.63 · classifier (input) 0.88" at the separability part's step. */
export function separabilityText(part) {
  return part.layers
    .map((l) => {
      const name = l.measured_at === "input" ? `${l.layer} (input)` : l.layer;
      return `${name} ${formatNumber(l.accuracy, 2)}`;
    })
    .join(" · ");
}

/** The last value of a series that is not null, with its step: {step, value} or null. */
export function lastValue(steps, values) {
  for (let i = values.length - 1; i >= 0; i--)
    if (values[i] !== null && values[i] !== undefined) return { step: steps[i], value: values[i] };
  return null;
}

/** One line under a chart: the last value and its step ("0.82 at step 6,000"), or why there is none. */
export function lastText(steps, values, digits = 2) {
  const last = lastValue(steps, values);
  return last === null
    ? "not measured at any logged step"
    : `${formatNumber(last.value, digits)} at step ${last.step.toLocaleString("en-US")}`;
}

/**
 * The rate-spread part's layers as a steps × layers matrix over the union of their steps:
 * {steps, layers (names), values: values[step][layer] (null where not logged or not finite)}.
 */
export function spreadMatrix(part) {
  const steps = [...new Set(part.layers.flatMap((l) => l.steps))].sort((a, b) => a - b);
  const column = new Map(steps.map((s, i) => [s, i]));
  const values = steps.map(() => part.layers.map(() => null));
  part.layers.forEach((l, j) =>
    l.steps.forEach((s, i) => {
      const v = l.spread[i];
      values[column.get(s)][j] = typeof v === "number" && Number.isFinite(v) ? v : null;
    }),
  );
  return { steps, layers: part.layers.map((l) => l.layer), values };
}

/** What a cell of the rate-spread map says on hover. */
export function spreadText(matrix, step, layer) {
  const name = matrix.layers[layer];
  const v = matrix.values[step] ? matrix.values[step][layer] : undefined;
  if (name === undefined || v === undefined) return "";
  const where = `${name} · step ${matrix.steps[step]}`;
  return v === null
    ? `${where} · no finite rates`
    : `${where} · spread of activation rates ${formatNumber(v, 3)} (standard deviation over filters)`;
}
