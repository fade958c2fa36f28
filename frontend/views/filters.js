// Filters view: a layer's kernels at a training step, drawn in the browser from the raw
// weights (so the global / per-filter normalisation toggle needs no request), a step slider
// that scrubs from memory (kernels arrive in blocks of steps and stay cached), the smoothness
// curve with the current step marked, and a click-to-enlarge filter with its smoothness and
// activation rate. Routes: api/filters/kernels, api/filters/smoothness (+ api/dead/rates).
import { kernels, peekKernels, seriesJSON } from "../api.js";
import {
  atOrBefore,
  field,
  fillSelect,
  formatNumber,
  h,
  message,
  naturalCompare,
  runNames,
  select,
  setChildren,
  toggle,
  unionSteps,
} from "../dom.js";
import { colors, drawFilter, drawKernelGrid, hitKernelGrid, inputModes, lineChart } from "../draw.js";
import { frameScheduler, panelSet, setLoading, stepSlider } from "../widgets.js";

export const id = "filters";
export const title = "Filters";

const layersOf = (run) => run.layers.filter((l) => l.kinds.kernels).map((l) => l.name);
const kindsOf = (run, layer) => (run.layers.find((l) => l.name === layer) || { kinds: {} }).kinds;

export function hasData(run) {
  return layersOf(run).length > 0;
}

export function create(root, shell) {
  const st = { layer: null, step: null, normalization: "global", inputMode: null, selected: -1 };
  const scheduleDraw = frameScheduler(() => drawAll());
  let panels = [];
  let token = 0;

  const layerSelect = select(
    [],
    null,
    (v) => {
      st.layer = v;
      st.selected = -1;
      st.inputMode = null;
      shell.busy(update());
    },
    { class: "layer", "aria-label": "layer" },
  );
  const normalization = toggle(
    [
      { value: "global", label: "global" },
      { value: "per_filter", label: "per filter" },
    ],
    st.normalization,
    (v) => {
      st.normalization = v;
      drawAll();
    },
    { class: "normalization", "aria-label": "normalisation" },
  );
  const inputSelect = select(
    [],
    null,
    (v) => {
      st.inputMode = v;
      drawAll();
    },
    { class: "input-mode", "aria-label": "input channels" },
  );
  const slider = stepSlider((step) => {
    st.step = step;
    scheduleDraw();
  });
  const controls = h(
    "div",
    { class: "controls" },
    field("Layer", layerSelect),
    field("Normalisation", normalization),
    field("Inputs", inputSelect),
    slider.el,
  );
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, makePanel);
  setChildren(root, controls, panelRow);

  function makePanel(run, layer) {
    const p = { run, layer, steps: [], smooth: null, rates: null, kernel: null, layout: null, wanted: null };
    p.canvas = h("canvas", { class: "kernel-grid", title: "Click a filter to enlarge it" });
    p.canvas.addEventListener("click", (event) => {
      if (!p.layout) return;
      const rect = p.canvas.getBoundingClientRect();
      const f = hitKernelGrid(
        p.layout,
        ((event.clientX - rect.left) * p.canvas.width) / rect.width,
        ((event.clientY - rect.top) * p.canvas.height) / rect.height,
      );
      st.selected = f === st.selected ? -1 : f;
      drawAll();
    });
    p.note = h("div", { class: "panel-note" });
    p.figure = h("div", { class: "figure" }, p.canvas);
    p.chart = h("canvas", { class: "chart smoothness-chart" });
    p.chartBox = h(
      "div",
      { class: "chart-box" },
      h("div", { class: "chart-title", text: "Smoothness (1 = smooth)" }),
      p.chart,
    );
    p.detail = h("div", { class: "detail" });
    p.el = h(
      "article",
      { class: "panel", dataset: { run: run.name } },
      h("h3", { class: "panel-title", text: run.name }),
      p.note,
      p.figure,
      p.detail,
      p.chartBox,
    );
    return p;
  }

  async function update() {
    const my = ++token;
    const runs = shell.selectedRuns();
    const layers = [...new Set(runs.flatMap(layersOf))].sort(naturalCompare);
    if (!layers.length) {
      controls.hidden = true;
      panels = runPanels.reset();
      setChildren(
        panelRow,
        message(
          "empty",
          `No kernels logged in ${runNames(runs)}`,
          h("p", {
            text: 'CNNVizCallback logs the kernels of the first conv layer every 100 steps by default; choose layers with kernel_layers=[...] and the schedule with every_n_steps={"kernels": N}.',
          }),
        ),
      );
      return;
    }
    controls.hidden = false;
    if (!layers.includes(st.layer)) st.layer = layers[0];
    fillSelect(layerSelect, layers, st.layer);
    const layer = st.layer;
    panels = runPanels.sync(runs, layer);
    await Promise.all(
      panels.map(async (p) => {
        const kinds = kindsOf(p.run, layer);
        setLoading(p.figure, true);
        try {
          const [steps, smooth, rates] = await Promise.all([
            kinds.kernels
              ? seriesJSON("api/runs/steps", { run: p.run.name, kind: "kernels", layer }).then((r) => r.steps)
              : [],
            kinds.smoothness ? seriesJSON("api/filters/smoothness", { run: p.run.name, layer }) : null,
            kinds.dead_filters ? seriesJSON("api/dead/rates", { run: p.run.name, layer }) : null,
          ]);
          if (my !== token) return;
          Object.assign(p, { steps, smooth, rates });
        } catch (error) {
          if (my === token) panelError(p, error);
        }
      }),
    );
    if (my !== token) return;
    st.step = slider.setSteps(unionSteps(...panels.map((p) => p.steps)), st.step);
    drawAll();
  }

  function panelError(p, error) {
    setLoading(p.figure, false);
    setChildren(
      p.detail,
      message("error", "Could not load this run", h("p", { text: String(error.message || error) })),
    );
  }

  function drawAll() {
    for (const p of panels) drawPanel(p);
  }

  function drawPanel(p) {
    if (!p.steps.length) {
      p.note.textContent = "No kernels logged for this layer in this run.";
      setLoading(p.figure, false);
      return;
    }
    const i = atOrBefore(p.steps, st.step);
    const step = p.steps[i];
    p.wanted = step;
    p.el.dataset.step = String(step);
    p.note.textContent =
      step === st.step ? `step ${step}` : `step ${step} (last logged at or before ${st.step})`;
    const cached = peekKernels(p.run.name, p.layer, step);
    if (cached) {
      paint(p, cached);
    } else {
      setLoading(p.figure, true);
      kernels(p.run.name, p.layer, p.steps, i)
        .then((k) => {
          if (p.wanted === step && panels.includes(p)) paint(p, k);
        })
        .catch((error) => panelError(p, error));
    }
    drawChart(p, step);
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

  function paint(p, kernel) {
    setLoading(p.figure, false);
    ensureInputModes(kernel.shape[1]);
    p.kernel = kernel;
    p.layout = drawKernelGrid(p.canvas, kernel, {
      normalization: st.normalization,
      inputMode: st.inputMode || "mean",
      selected: st.selected,
      target: panels.length > 1 ? 360 : 440,
    });
    p.canvas.dataset.step = String(kernel.step);
    drawDetail(p, kernel);
  }

  function valueAt(seriesSteps, rows, step, index) {
    if (!seriesSteps || !seriesSteps.length) return { value: null, step: null };
    const j = atOrBefore(seriesSteps, step);
    if (seriesSteps[j] > step) return { value: null, step: null };
    const row = rows[j];
    return { value: row && index < row.length ? row[index] : null, step: seriesSteps[j] };
  }

  function drawDetail(p, kernel) {
    const f = st.selected;
    if (f < 0 || f >= kernel.shape[0]) {
      setChildren(
        p.detail,
        h("p", {
          class: "hint",
          text: `${kernel.shape[0]} filters of ${kernel.shape[1]}×${kernel.shape[2]}×${kernel.shape[3]}. Click a filter to enlarge it.`,
        }),
      );
      return;
    }
    const big = h("canvas", { class: "filter-big" });
    drawFilter(big, kernel, f, { normalization: st.normalization, inputMode: st.inputMode || "mean" });
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
    const smooth = p.smooth ? valueAt(p.smooth.steps, p.smooth.values, kernel.step, f) : { value: null };
    const mean = p.smooth
      ? valueAt(
          p.smooth.steps,
          p.smooth.mean.map((m) => [m]),
          kernel.step,
          0,
        )
      : { value: null };
    const rate = p.rates
      ? valueAt(p.rates.steps, p.rates.rates, kernel.step, f)
      : { value: null, step: null };
    const rateText = !p.rates
      ? "not logged for this layer (dead_filter_layers)"
      : rate.step === null
        ? "not measured yet at this step"
        : `${formatNumber(rate.value, 3)} at step ${rate.step}${rate.value === 0 ? " — dead" : ""}`;
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
          h("dd", {
            class: "smoothness-value",
            text: p.smooth
              ? `${formatNumber(smooth.value, 3)} (layer mean ${formatNumber(mean.value, 3)})`
              : "not logged",
          }),
          h("dt", { text: "Activation rate" }),
          h("dd", { class: "rate-value", text: rateText }),
          h("dt", { text: "Weights" }),
          h("dd", {
            text: `min ${formatNumber(lo)}, max ${formatNumber(hi)}, L2 norm ${formatNumber(Math.sqrt(ss))}`,
          }),
          ...links(p, f),
        ),
      ),
    );
  }

  /** Buttons to the same filter in other views (Top images, Patterns) when they have data for it. */
  function links(p, f) {
    const kinds = kindsOf(p.run, p.layer);
    const buttons = [];
    if (kinds.top_examples)
      buttons.push(
        h("button", {
          type: "button",
          class: "link-button open-top",
          text: "Top images ▸",
          title: "The probe images that activate this filter most (Embedding view)",
          on: { click: () => shell.open("embedding", { layer: p.layer, filter: f, run: p.run.name }) },
        }),
      );
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

  function drawChart(p, step) {
    if (!p.smooth || !p.smooth.steps.length) {
      p.chartBox.hidden = true;
      return;
    }
    p.chartBox.hidden = false;
    const c = colors();
    const lines = [{ xs: p.smooth.steps, ys: p.smooth.mean, color: c.series[0], label: "layer mean" }];
    if (st.selected >= 0)
      lines.push({
        xs: p.smooth.steps,
        ys: p.smooth.values.map((row) => (st.selected < row.length ? row[st.selected] : null)),
        color: c.select,
        label: `filter #${st.selected}`,
        dash: [4, 3],
      });
    lineChart(p.chart, {
      lines,
      marker: step,
      yRange: [-1, 1],
      width: panels.length > 1 ? 360 : 440,
      height: 140,
    });
  }

  return {
    update,
    redraw: drawAll,
    destroy() {
      token++;
      slider.stop();
      scheduleDraw.cancel();
    },
  };
}
