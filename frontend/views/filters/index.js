// Filters view: a layer's kernels at a training step, drawn in the browser from the raw
// weights (so the global / per-filter normalisation toggle needs no request), a step slider
// that scrubs from memory (kernels arrive in blocks of steps and stay cached), the smoothness
// curve with the current step marked, and a click-to-enlarge filter with its smoothness and
// activation rate. Routes: api/filters/kernels, api/filters/smoothness (+ api/dead/rates).
import { eventPoint, field, fillSelect, h, select, setChildren, stateToggle } from "../../dom.js";
import { colors, drawFilter, drawKernelGrid, lineChart } from "../../draw.js";
import { formatNumber, stepNote } from "../../format.js";
import { hitKernelGrid, inputModes, weightStats } from "../../kernels.js";
import { basePanel, layerView } from "../../layer_view.js";
import { kindsAt, valueAt } from "../../steps.js";
import { setLoading } from "../../widgets.js";
import { filterSeries, kernels, peekKernels, quantileBand } from "./data.js";
import { topLink } from "../top_images/index.js";

export function create(root, shell) {
  const st = { normalization: "global", inputMode: null, selected: -1 };
  let view;
  let inputSelect;
  const width = () => (view.compared ? 360 : 440);

  function setup(v) {
    view = v;
    const normalization = stateToggle(st, "normalization", NORMALIZATIONS, () => view.redraw(), {
      class: "normalization",
      "aria-label": "normalisation",
    });
    inputSelect = select(
      [],
      null,
      (value) => {
        st.inputMode = value;
        view.redraw();
      },
      { class: "input-mode", "aria-label": "input channels" },
    );
    return {
      controls: [
        view.layerField,
        field("Normalisation", normalization),
        field("Inputs", inputSelect),
        view.slider.el,
      ],
    };
  }

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    Object.assign(p, { smooth: null, rates: null, kernel: null, layout: null });
    p.canvas = h("canvas", { class: "kernel-grid", title: "Click a filter to enlarge it" });
    p.canvas.addEventListener("click", (event) => {
      if (!p.layout) return;
      const f = hitKernelGrid(p.layout, ...eventPoint(event, p.canvas, true));
      st.selected = f === st.selected ? -1 : f;
      view.redraw();
    });
    p.figure = h("div", { class: "figure" }, p.canvas);
    p.chart = h("canvas", { class: "chart smoothness-chart" });
    p.chartBox = h(
      "div",
      { class: "chart-box" },
      (p.chartTitle = h("div", { class: "chart-title", text: "Smoothness (1 = smooth)" })),
      p.chart,
    );
    p.detail = h("div", { class: "detail" });
    p.el.append(p.figure, p.detail, p.chartBox);
    return p;
  }

  function ensureInputModes(inChannels) {
    const modes = inputModes(inChannels);
    const values = modes.map((m) => m.value);
    if (!values.includes(st.inputMode)) st.inputMode = values[0] || null;
    if (inputSelect.dataset.channels !== String(inChannels)) {
      fillSelect(inputSelect, modes, st.inputMode);
      inputSelect.dataset.channels = String(inChannels);
    } else {
      inputSelect.value = st.inputMode;
    }
    inputSelect.disabled = modes.length <= 1;
  }

  function paint(p, kernel, step) {
    p.el.dataset.step = String(step);
    p.note.textContent = stepNote(step, view.state.step);
    setLoading(p.figure, false);
    ensureInputModes(kernel.shape[1]);
    p.kernel = kernel;
    p.layout = drawKernelGrid(p.canvas, kernel, {
      normalization: st.normalization,
      inputMode: st.inputMode || "mean",
      selected: st.selected,
      target: width(),
    });
    p.canvas.dataset.step = String(kernel.step);
    drawDetail(p, kernel, st, shell);
    drawChart(p, step, st.selected, width());
  }

  return layerView(root, shell, {
    name: "filters",
    nothing: "kernels",
    kind: "kernels",
    onLayer() {
      st.selected = -1;
      st.inputMode = null;
    },
    take(intent) {
      if (Number.isInteger(intent.filter)) st.selected = intent.filter; // a link's filter
      return intent.layer;
    },
    urlState: () => ({ filter: st.selected >= 0 ? st.selected : null }),
    setup,
    makePanel,
    load: (p, layer) => filterSeries(p.run, layer),
    none: (p) => (p.note.textContent = "No kernels logged for this layer in this run."),
    peek: (p, step) => peekKernels(p.run.name, p.layer, step),
    fetch: (p, step, i) => {
      const got = kernels(p.run.name, p.layer, p.steps, i);
      // the next step is on its way while this one draws (a big layer comes one step a request)
      if (i + 1 < p.steps.length)
        got.then(() => kernels(p.run.name, p.layer, p.steps, i + 1)).catch(() => {});
      return got;
    },
    prefetch: false,
    paint,
  });
}

const NORMALIZATIONS = { global: "global", per_filter: "per filter" }; // the grid's colour scale: shared or per filter
const QUANTISED = " (a big layer: weights sent as int8 with one scale per filter, each within scale / 2)";

/** The selected filter enlarged, with its smoothness, activation rate, weights and links. */
function drawDetail(p, kernel, st, shell) {
  const f = st.selected;
  if (f < 0 || f >= kernel.shape[0]) {
    const [out, inC, kh, kw] = kernel.shape;
    setChildren(
      p.detail,
      h("p", {
        class: "hint",
        text: `${out} filters of ${inC}×${kh}×${kw}${kernel.scales ? QUANTISED : ""}. Click a filter to enlarge it.`,
      }),
    );
    return;
  }
  const big = h("canvas", { class: "filter-big" });
  drawFilter(big, kernel, f, { normalization: st.normalization, inputMode: st.inputMode || "mean" });
  const w = weightStats(kernel, f);
  setChildren(
    p.detail,
    h(
      "div",
      { class: "filter-detail", dataset: { filter: String(f) } },
      big,
      h(
        "dl",
        {},
        h("dt", { text: "Filter" }),
        h("dd", { text: `#${f}` }),
        h("dt", { text: "Smoothness" }),
        h("dd", { class: "smoothness-value", text: smoothnessText(p, kernel.step, f) }),
        h("dt", { text: "Activation rate" }),
        h("dd", { class: "rate-value", text: rateText(p, kernel.step, f) }),
        h("dt", { text: "Weights" }),
        h("dd", {
          text: `min ${formatNumber(w.min)}, max ${formatNumber(w.max)}, L2 norm ${formatNumber(w.norm)}`,
        }),
        ...(kernel.scales
          ? [
              h("dt", { text: "Sent as" }),
              h("dd", {
                class: "quantised",
                text: `int8 × ${kernel.scales[f].toPrecision(3)} (each weight within ${(kernel.scales[f] / 2).toPrecision(3)})`,
              }),
            ]
          : []),
        ...links(p, f, shell),
      ),
    ),
  );
}

/** Buttons to the same filter in other views (Top images, Patterns) when they have data for it. */
function links(p, f, shell) {
  const kinds = kindsAt(p.run, p.layer);
  const buttons = [];
  if (kinds.top_examples) buttons.push(topLink(shell, { run: p.run.name, layer: p.layer, filter: f }));
  if (kinds.patterns)
    buttons.push(
      h("button", {
        type: "button",
        class: "link-button open-patterns",
        text: "Pattern ▸",
        title: "The image that maximises this filter (Patterns view)",
        on: { click: () => shell.open("patterns", { layer: p.layer, filter: f, run: p.run.name }) },
      }),
    );
  return buttons.length ? [h("dt", { text: "See also" }), h("dd", { class: "links" }, buttons)] : [];
}

/**
 * The smoothness curve: the layer mean, the spread across filters (10th–90th percentile at each step,
 * a band), the selected filter, the step marked; the y axis fits the data (within [-1, 1]).
 */
function drawChart(p, step, selected, width) {
  p.chartBox.hidden = !p.smooth || !p.smooth.steps.length;
  if (p.chartBox.hidden) return;
  const c = colors();
  const band = quantileBand(p.smooth.values, 0.1, 0.9);
  const filters = Math.max(0, ...band.counts);
  const bands =
    filters > 1
      ? [{ xs: p.smooth.steps, lo: band.lo, hi: band.hi, color: c.series[0], label: "10–90%" }]
      : [];
  const lines = [{ xs: p.smooth.steps, ys: p.smooth.mean, color: c.series[0], label: "layer mean" }];
  if (selected >= 0)
    lines.push({
      xs: p.smooth.steps,
      ys: p.smooth.values.map((row) => (selected < row.length ? row[selected] : null)),
      color: c.select,
      label: `filter #${selected}`,
      dash: [4, 3],
    });
  lineChart(p.chart, { lines, bands, marker: step, yClamp: [-1, 1], width, height: 140 });
  const steps = p.smooth.steps.length;
  p.chartTitle.textContent =
    `Smoothness (1 = smooth): layer mean` +
    (bands.length ? `, band 10th–90th percentile of ${filters} filters` : "") +
    (steps === 1 ? ` · one step logged (${p.smooth.steps[0]})` : "");
}

/** "0.412 (layer mean 0.380)" for filter `f` at the last smoothness step <= `step`. */
export function smoothnessText(p, step, f) {
  if (!p.smooth) return "not logged";
  const smooth = valueAt(p.smooth.steps, p.smooth.values, step, f);
  const mean = valueAt(
    p.smooth.steps,
    p.smooth.mean.map((m) => [m]),
    step,
    0,
  );
  return `${formatNumber(smooth.value, 3)} (layer mean ${formatNumber(mean.value, 3)})`;
}

/** Filter `f`'s activation rate at the last measured step <= `step` ("— dead" at 0). */
export function rateText(p, step, f) {
  if (!p.rates) return "not logged for this layer (dead_filter_layers)";
  const rate = valueAt(p.rates.steps, p.rates.rates, step, f);
  if (rate.step === null) return "not measured yet at this step";
  return `${formatNumber(rate.value, 3)} at step ${rate.step}${rate.value === 0 ? " — dead" : ""}`;
}
