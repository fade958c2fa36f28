// Dead filters view: the fraction of dead filters of every layer over training, a
// filter × step heat-map of activation rates for one layer (dead cells highlighted) and the
// list of filters dead at the chosen step. A filter is dead over a window when its output
// was > 0 at no position (rate 0); the threshold widens that to "rate <= t".
// Routes: api/dead/fractions, api/dead/rates.
import { eventPoint, field, h, setChildren } from "../../dom.js";
import { colors, heatmap, lineChart, rateLegend } from "../../draw.js";
import { formatNumber, stepNote } from "../../format.js";
import { basePanel, layerView } from "../../layer_view.js";
import { layersWith } from "../../steps.js";
import { deadAt, deadSeries, sampleNote } from "./data.js";
import { showSemantics } from "./semantics.js";

export function create(root, shell) {
  const st = { threshold: 0, selected: -1 };
  let view;
  const legend = h("canvas", { class: "legend" });

  function setup(v) {
    view = v;
    const threshold = h("input", {
      type: "number",
      min: "0",
      max: "1",
      step: "0.01",
      value: "0",
      class: "threshold",
      "aria-label": "dead threshold",
    });
    threshold.addEventListener("change", () => {
      const t = Number(threshold.value);
      st.threshold = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
      threshold.value = String(st.threshold);
      view.update();
    });
    const legendBox = h(
      "div",
      { class: "legend-box" },
      legend,
      h("span", { class: "legend-text", text: "dead · activation rate 0 → 1" }),
    );
    return { controls: [view.layerField, field("Dead if rate ≤", threshold), view.slider.el, legendBox] };
  }

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    Object.assign(p, { fractions: null, rates: null });
    p.chart = h("canvas", { class: "chart fraction-chart" });
    p.heat = h("canvas", { class: "heatmap", title: "Click: choose this step and filter" });
    p.heat.addEventListener("click", (event) => {
      if (!p.hit) return;
      const { column, row } = p.hit(...eventPoint(event, p.heat, true));
      st.selected = row;
      view.slider.select(p.rates.steps[column]);
    });
    p.list = h("div", { class: "dead-list" });
    p.axes = h("div", { class: "heat-axes" });
    p.figure = h(
      "div",
      { class: "figure" },
      h("div", { class: "chart-title", text: "Dead fraction per layer" }),
      p.chart,
      h("div", {
        class: "chart-title heat-title",
        text: `Activation rate per filter (rows) and logged step (columns): ${layer}`,
      }),
      h("div", { class: "heat-box" }, p.heat),
      p.axes,
    );
    p.el.append(p.figure, p.list);
    return p;
  }

  function width() {
    return view.compared ? 380 : 560;
  }

  function drawFractions(p) {
    if (!p.fractions) return;
    const c = colors();
    const lines = p.fractions.layers.map((l, i) => ({
      xs: l.steps,
      ys: l.dead_fraction,
      color: c.series[i % c.series.length],
      label: l.layer,
      width: l.layer === p.layer ? 2.5 : 1.5,
    }));
    lineChart(p.chart, { lines, marker: view.state.step, yRange: [0, 1], width: width(), height: 150 });
  }

  function none(p) {
    drawFractions(p);
    p.note.textContent = "No dead-filter statistics for this layer in this run.";
    p.heat.hidden = true;
    setChildren(p.list);
  }

  function paint(p, _, step, column) {
    drawFractions(p);
    p.heat.hidden = false;
    p.el.dataset.step = String(step);
    p.note.textContent =
      step > view.state.step ? `first measured at step ${step}` : stepNote(step, view.state.step, "measured");
    p.hit = heatmap(p.heat, {
      rates: p.rates.rates,
      threshold: st.threshold,
      column,
      selectedRow: st.selected,
      width: width(),
    }).hit;
    const steps = p.rates.steps;
    const filters = p.rates.rates.length ? p.rates.rates[0].length : 0;
    p.axes.textContent = `rows: filters 0–${Math.max(filters - 1, 0)} (top to bottom) · columns: steps ${steps[0]}–${steps[steps.length - 1]} · click a cell to pick its step and filter`;
    drawList(p, p.rates.rates[column] || [], step, st, sampleNote(p.rates, column));
    showSemantics(p.list, p.rates);
  }

  return layerView(root, shell, {
    name: "dead",
    nothing: "dead-filter statistics",
    layerLabel: "Heat-map layer",
    layersOf: (run) => layersWith(run, "dead_filters"),
    onLayer: () => (st.selected = -1),
    setup,
    makePanel,
    load: (p, layer) => {
      rateLegend(legend);
      return deadSeries(p.run, layer, st.threshold);
    },
    stepsOf: (p) => (p.rates ? p.rates.steps : []),
    none,
    paint,
  });
}

/** The filters dead at `step` (rate <= threshold), the batches they were counted on, and the selected filter's rate. */
function drawList(p, row, step, { threshold, selected }, sample) {
  const deadNow = deadAt(row, threshold);
  const items = [
    sample ? h("p", { class: "dead-sample", text: sample }) : null,
    h("p", {
      class: deadNow.length ? "dead-summary has-dead" : "dead-summary",
      text: deadNow.length
        ? `${deadNow.length} of ${row.length} filters dead at step ${step}:`
        : `No dead filters at step ${step} (${row.length} filters, rate ≤ ${threshold}).`,
    }),
  ];
  if (deadNow.length)
    items.push(
      h(
        "ul",
        { class: "dead-filters" },
        deadNow.slice(0, 256).map((f) => h("li", { text: `#${f}` })),
        deadNow.length > 256 ? h("li", { text: `… ${deadNow.length - 256} more` }) : null,
      ),
    );
  if (selected >= 0 && selected < row.length)
    items.push(
      h("p", {
        class: "selected-filter",
        text: `Filter #${selected}: activation rate ${formatNumber(row[selected], 3)} at step ${step}.`,
      }),
    );
  setChildren(p.list, items);
}
