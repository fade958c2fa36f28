// Separability view: how linearly separable the classes are at each tracked layer over training,
// measured as the held-out accuracy of a linear probe on the layer's pooled codes of the labelled
// embedding probe (tb_cnnviz/analysis/separability.py). Accuracy against depth at the selected step
// (earlier steps fading, the chance level dashed) and a layers × steps heat map with hover values.
// The layer select highlights a layer in both. Route: api/separability/layers.
import { eventPoint, h } from "../../dom.js";
import { stepNote } from "../../format.js";
import { basePanel, emptyPanel, layerView } from "../../layer_view.js";
import { accuracyHeatmap, depthChart } from "./draw.js";
import {
  cellText,
  chanceAt,
  depthCurves,
  heatRows,
  layerLabel,
  separabilityData,
  unmeasuredNote,
} from "./data.js";

export function create(root, shell) {
  let view;

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    p.data = null;
    p.chart = h("canvas", { class: "chart separability-chart" });
    p.heat = h("canvas", { class: "heatmap separability-heat", title: "Click: show this step" });
    p.readout = h("div", { class: "separability-readout", role: "status", text: " " });
    p.axes = h("div", { class: "heat-axes" });
    p.chart.addEventListener("mousemove", (event) => {
      if (!p.chartHit || !p.data) return;
      const row = p.chartHit(eventPoint(event, p.chart)[0]);
      p.readout.textContent = cellText(p.data, row, p.data.steps.indexOf(p.shown));
    });
    p.heat.addEventListener("mousemove", (event) => {
      if (!p.heatHit || !p.data) return;
      const cell = p.heatHit(...eventPoint(event, p.heat));
      if (!cell) return;
      p.readout.textContent = cellText(p.data, cell.row, cell.column);
      p.heat.title = p.readout.textContent;
    });
    p.heat.addEventListener("click", (event) => {
      if (!p.heatHit || !p.data) return;
      const cell = p.heatHit(...eventPoint(event, p.heat));
      if (cell) view.slider.select(p.data.steps[cell.column]);
    });
    p.figure = h(
      "div",
      { class: "figure" },
      h("div", { class: "chart-title", text: "Held-out accuracy of a linear probe against depth" }),
      p.chart,
      h("div", {
        class: "chart-title heat-title",
        text: "Accuracy per layer (rows) and logged step (columns)",
      }),
      h("div", { class: "heat-box" }, p.heat),
      p.axes,
      p.readout,
    );
    p.el.append(p.figure);
    return p;
  }

  const width = () => (view.compared ? 380 : 560);

  function paint(p, _, step, column) {
    const data = p.data;
    const selected = data.layers.findIndex((l) => l.layer === view.state.layer);
    p.shown = step;
    p.el.dataset.step = String(step);
    const missing = unmeasuredNote(data, step);
    p.note.textContent = stepNote(step, view.state.step, "measured") + (missing ? ` · ${missing}` : "");
    p.chartHit = depthChart(p.chart, {
      labels: data.layers.map(layerLabel),
      curves: depthCurves(data, step),
      chance: chanceAt(data, step),
      selected,
      width: width(),
    }).hit;
    p.heatHit = accuracyHeatmap(p.heat, {
      rows: heatRows(data),
      labels: data.layers.map(layerLabel),
      column,
      selectedRow: selected,
      width: width(),
    }).hit;
    const steps = data.steps;
    p.axes.textContent = `columns: steps ${steps[0]}–${steps[steps.length - 1]} · colour: accuracy 0 → 1 (grey: not measured) · hover for values, click to pick a step`;
    if (selected >= 0) p.readout.textContent = cellText(data, selected, column);
  }

  return layerView(root, shell, {
    name: "separability",
    nothing: "linear separability",
    layerLabel: "Highlight layer",
    layerAria: "highlighted layer",
    setup: (v) => {
      view = v;
      return { controls: [view.layerField, view.slider.el] };
    },
    makePanel,
    load: async (p) => ({ data: await separabilityData(p.run) }),
    stepsOf: (p) => (p.data ? p.data.steps : []),
    none: (p) => emptyPanel(p, "No separability measured in this run."),
    paint,
  });
}
