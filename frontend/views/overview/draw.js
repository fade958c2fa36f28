// Overview, drawing: the parts of one run's panel. The dead-fraction map is the Dead filters view's
// layers × steps map (views/dead/layer_map.js), the curves are draw.js's lineChart; a part that was not
// logged shows what to pass to CNNVizCallback to get it (the route's hint).
import { eventPoint, h, setChildren } from "../../dom.js";
import { colors, heatmap, lineChart } from "../../draw.js";
import { cellText, drawLayerMap, fractionTable, mapLayout, sortRows } from "../dead/layer_map.js";
import { lastText, separabilityText, smoothnessSpec, spreadMatrix, spreadText } from "./data.js";

/** A titled section of a panel: {el, body}; `name` is its data-part. */
export function section(name, title) {
  const body = h("div", { class: "overview-body" });
  const el = h(
    "section",
    { class: "overview-part", dataset: { part: name }, style: { margin: "10px 0 14px" } },
    h("div", { class: "chart-title", text: title }),
    body,
  );
  return { el, body };
}

/** What to log to get a part that is absent. */
export function hintNote(text) {
  return h("p", { class: "hint overview-hint", text: `Not logged. ${text}` });
}

/**
 * The dead-fraction map of `part` (api/dead/fractions' answer) in `body`, `width` CSS px wide, with a
 * readout of the hovered cell; a click opens the Dead filters view at that layer and step.
 */
export function deadMap(body, part, width, open) {
  const table = fractionTable(part.layers);
  const rows = sortRows(table.rows, "order");
  const canvas = h("canvas", { class: "heatmap overview-dead-map", title: "Click: open in Dead filters" });
  const readout = h("div", { class: "hover-readout overview-dead-readout", role: "status", text: " " });
  const undefinedLayers = rows.filter((r) => r.semantics !== "relu" && r.semantics !== "smooth");
  const notes = undefinedLayers.length
    ? `${undefinedLayers.length} layer(s) hatched: no dead filters defined (${[
        ...new Set(undefinedLayers.map((r) => r.semantics)),
      ].join(", ")})`
    : "";
  const axes = h("div", {
    class: "heat-axes",
    text:
      `rows: ${rows.length} layers · columns: steps ${table.steps[0]}–${table.steps[table.steps.length - 1]}` +
      ` · colour: dead fraction 0 → 1 · hover for values, click to open` +
      (notes ? ` · ${notes}` : ""),
  });
  setChildren(body, h("div", { class: "heat-box" }, canvas), axes, readout);
  const { hit } = drawLayerMap(canvas, { steps: table.steps, rows }, { width });
  const cellAt = (event) => {
    const at = hit(...eventPoint(event, canvas));
    return at && at.column >= 0 ? at : null;
  };
  canvas.addEventListener("mousemove", (event) => {
    const at = cellAt(event);
    if (!at) return;
    readout.textContent = cellText(rows[at.row], table.steps[at.column], at.column);
    canvas.title = readout.textContent;
  });
  canvas.addEventListener("click", (event) => {
    const at = cellAt(event);
    if (at) open("dead", { layer: rows[at.row].layer, step: table.steps[at.column] });
  });
}

/** A small line chart with a line of text under it. */
function smallChart(body, className, spec, text) {
  const canvas = h("canvas", { class: `chart ${className}` });
  setChildren(body, canvas, h("div", { class: "panel-note", text }));
  lineChart(canvas, { height: 120, ...spec });
}

export function smoothnessChart(body, part, width) {
  const c = colors();
  smallChart(
    body,
    "overview-smoothness",
    { ...smoothnessSpec(part, c.series), yClamp: [-1, 1], width, yLabel: "smoothness" },
    `${part.layer}: mean over filters ${lastText(part.steps, part.mean)} (1 smooth, ~0 noise)`,
  );
}

export function separabilityChart(body, part, width) {
  const c = colors();
  const deepest = part.deepest;
  smallChart(
    body,
    "overview-separability",
    {
      lines: [{ xs: deepest.steps, ys: deepest.accuracy, color: c.series[2], label: deepest.layer }],
      yRange: [0, 1],
      width,
      yLabel: "accuracy",
    },
    `at step ${part.step.toLocaleString("en-US")}: ${separabilityText(part)}`,
  );
}

export function faithfulnessChart(body, part, width) {
  const c = colors();
  const last = part.no_better_than_random.length - 1;
  const flagged =
    last >= 0
      ? ` · no better than random on ${part.no_better_than_random[last]} of ${part.images[last]}`
      : "";
  smallChart(
    body,
    "overview-faithfulness",
    {
      lines: [{ xs: part.steps, ys: part.deletion_gap, color: c.series[1], label: "deletion gap" }],
      width,
      yLabel: "gap",
    },
    `${part.layer}: mean deletion gap (random − CAM) ${lastText(part.steps, part.deletion_gap, 3)}${flagged}`,
  );
}

export function probeAccuracyChart(body, part, width) {
  const c = colors();
  smallChart(
    body,
    "overview-probe-accuracy",
    {
      lines: [{ xs: part.steps, ys: part.accuracy, color: c.series[0], label: "probe accuracy" }],
      yRange: [0, 1],
      width,
      yLabel: "accuracy",
    },
    `probe images classified as their label: ${lastText(part.steps, part.accuracy)}`,
  );
}

/**
 * The spread of each layer's activation rates (rows: the layers of the dead-fraction map, in its order;
 * columns: logged steps, aligned with that map's), viridis from 0 to 0.5 (the largest spread of rates
 * in [0, 1]), grey where not measured; hover for values, a click opens Dead filters there.
 */
export function spreadMap(body, part, width, open) {
  const matrix = spreadMatrix(part);
  const L = mapLayout(matrix.layers.length, matrix.steps.length, width);
  const canvas = h("canvas", { class: "heatmap overview-spread-map", title: "Click: open in Dead filters" });
  const readout = h("div", { class: "hover-readout overview-spread-readout", role: "status", text: " " });
  const axes = h("div", {
    class: "heat-axes",
    text: "rows: the layers above, in the same order · colour: standard deviation of the filters' activation rates 0 → 0.5 (0: every filter fires alike) · grey: not measured",
  });
  setChildren(
    body,
    h("div", { class: "heat-box", style: { paddingLeft: `${L.label}px` } }, canvas),
    axes,
    readout,
  );
  const scaled = matrix.values.map((row) => row.map((v) => (v === null ? null : Math.min(1, v / 0.5))));
  const { hit } = heatmap(canvas, {
    rates: scaled,
    threshold: -1,
    width: L.cellW * matrix.steps.length + 2,
    maxHeight: L.cellH * matrix.layers.length,
  });
  const cellAt = (event) => {
    const [x, y] = eventPoint(event, canvas);
    const at = hit(x, y);
    return at.column >= 0 && at.row >= 0 ? at : null;
  };
  canvas.addEventListener("mousemove", (event) => {
    const at = cellAt(event);
    if (!at) return;
    readout.textContent = spreadText(matrix, at.column, at.row);
    canvas.title = readout.textContent;
  });
  canvas.addEventListener("click", (event) => {
    const at = cellAt(event);
    if (at) open("dead", { layer: matrix.layers[at.row], step: matrix.steps[at.column] });
  });
}
