// Dead filters view: the fraction of dead filters of every layer over training, a
// filter × step heat-map of activation rates for one layer (dead cells highlighted) and the
// list of filters dead at the chosen step. A filter is dead over a window when its output
// was > 0 at no position (rate 0); the threshold widens that to "rate <= t".
// Routes: api/dead/fractions, api/dead/rates.
import { seriesJSON } from "../api.js";
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
  unionSteps,
} from "../dom.js";
import { colors, heatmap, lineChart, rateLegend } from "../draw.js";
import { frameScheduler, panelSet, setLoading, stepSlider } from "../widgets.js";

export const id = "dead";
export const title = "Dead filters";

const layersOf = (run) => run.layers.filter((l) => l.kinds.dead_filters).map((l) => l.name);

export function hasData(run) {
  return layersOf(run).length > 0;
}

export function create(root, shell) {
  const st = { layer: null, step: null, threshold: 0, selected: -1 };
  const scheduleDraw = frameScheduler(() => drawAll());
  let panels = [];
  let token = 0;

  const layerSelect = select(
    [],
    null,
    (v) => {
      st.layer = v;
      st.selected = -1;
      shell.busy(update());
    },
    { class: "layer", "aria-label": "layer" },
  );
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
    shell.busy(update());
  });
  const slider = stepSlider((step) => {
    st.step = step;
    scheduleDraw();
  });
  const legend = h("canvas", { class: "legend" });
  const controls = h(
    "div",
    { class: "controls" },
    field("Heat-map layer", layerSelect),
    field("Dead if rate ≤", threshold),
    slider.el,
    h(
      "div",
      { class: "legend-box" },
      legend,
      h("span", { class: "legend-text", text: "dead · activation rate 0 → 1" }),
    ),
  );
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, makePanel);
  setChildren(root, controls, panelRow);

  function makePanel(run, layer) {
    const p = { run, layer, fractions: null, rates: null, wanted: null };
    p.note = h("div", { class: "panel-note" });
    p.chart = h("canvas", { class: "chart fraction-chart" });
    p.heat = h("canvas", { class: "heatmap", title: "Click: choose this step and filter" });
    p.heat.addEventListener("click", (event) => {
      if (!p.hit) return;
      const rect = p.heat.getBoundingClientRect();
      const { column, row } = p.hit(
        ((event.clientX - rect.left) * p.heat.width) / rect.width,
        ((event.clientY - rect.top) * p.heat.height) / rect.height,
      );
      st.selected = row;
      slider.select(p.rates.steps[column]);
    });
    p.list = h("div", { class: "dead-list" });
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
      (p.axes = h("div", { class: "heat-axes" })),
    );
    p.el = h(
      "article",
      { class: "panel", dataset: { run: run.name } },
      h("h3", { class: "panel-title", text: run.name }),
      p.note,
      p.figure,
      p.list,
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
          `No dead-filter statistics logged in ${runNames(runs)}`,
          h("p", {
            text: 'CNNVizCallback measures every conv layer\'s activation rates over windows of 200 steps by default (dead_filter_layers=[...], every_n_steps={"dead_filters": N}).',
          }),
        ),
      );
      return;
    }
    controls.hidden = false;
    rateLegend(legend);
    if (!layers.includes(st.layer)) st.layer = layers[0];
    fillSelect(layerSelect, layers, st.layer);
    const layer = st.layer;
    panels = runPanels.sync(runs, layer);
    await Promise.all(
      panels.map(async (p) => {
        setLoading(p.figure, true);
        const has = p.run.layers.some((l) => l.name === layer && l.kinds.dead_filters);
        try {
          const [fractions, rates] = await Promise.all([
            seriesJSON("api/dead/fractions", { run: p.run.name, threshold: st.threshold }),
            has ? seriesJSON("api/dead/rates", { run: p.run.name, layer, threshold: st.threshold }) : null,
          ]);
          if (my !== token) return;
          Object.assign(p, { fractions, rates });
        } catch (error) {
          if (my === token) p.note.textContent = `Could not load: ${error.message}`;
        } finally {
          setLoading(p.figure, false);
        }
      }),
    );
    if (my !== token) return;
    st.step = slider.setSteps(unionSteps(...panels.map((p) => (p.rates ? p.rates.steps : []))), st.step);
    drawAll();
  }

  function drawAll() {
    for (const p of panels) drawPanel(p);
  }

  function drawPanel(p) {
    const width = panels.length > 1 ? 380 : 560;
    const c = colors();
    if (p.fractions) {
      const lines = p.fractions.layers.map((l, i) => ({
        xs: l.steps,
        ys: l.dead_fraction,
        color: c.series[i % c.series.length],
        label: l.layer,
        width: l.layer === p.layer ? 2.5 : 1.5,
      }));
      lineChart(p.chart, { lines, marker: st.step, yRange: [0, 1], width, height: 150 });
    }
    if (!p.rates || !p.rates.steps.length) {
      p.note.textContent = "No dead-filter statistics for this layer in this run.";
      p.heat.hidden = true;
      setChildren(p.list);
      return;
    }
    p.heat.hidden = false;
    const column = atOrBefore(p.rates.steps, st.step);
    const step = p.rates.steps[column];
    const before = step > st.step;
    p.el.dataset.step = String(step);
    p.note.textContent = before
      ? `first measured at step ${step}`
      : step === st.step
        ? `step ${step}`
        : `step ${step} (last measured at or before ${st.step})`;
    const out = heatmap(p.heat, {
      rates: p.rates.rates,
      threshold: st.threshold,
      column,
      selectedRow: st.selected,
      width,
    });
    p.hit = out.hit;
    const filters = p.rates.rates.length ? p.rates.rates[0].length : 0;
    const steps = p.rates.steps;
    p.axes.textContent = `rows: filters 0–${Math.max(filters - 1, 0)} (top to bottom) · columns: steps ${steps[0]}–${steps[steps.length - 1]} · click a cell to pick its step and filter`;
    const row = p.rates.rates[column] || [];
    const deadNow = [];
    row.forEach((v, f) => {
      if (v !== null && v <= st.threshold) deadNow.push(f);
    });
    const span = "";
    const items = [
      h("p", {
        class: deadNow.length ? "dead-summary has-dead" : "dead-summary",
        text: deadNow.length
          ? `${deadNow.length} of ${row.length} filters dead at step ${step}${span}:`
          : `No dead filters at step ${step} (${row.length} filters, rate ≤ ${st.threshold}${span}).`,
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
    if (st.selected >= 0 && st.selected < row.length)
      items.push(
        h("p", {
          class: "selected-filter",
          text: `Filter #${st.selected}: activation rate ${formatNumber(row[st.selected], 3)} at step ${step}.`,
        }),
      );
    setChildren(p.list, items);
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
