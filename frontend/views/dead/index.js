// Dead filters view: the fraction of dead filters of every layer over training (a line per
// layer up to LINES_UP_TO layers, else a layers × steps map with hover and sorting), a
// filter × step heat-map of activation rates for one layer (dead cells highlighted; FILTER_PAGE
// filters to a page) and the list of filters dead at the chosen step (CHIPS shown, "+N more"). A filter is dead over a window when its output
// was > 0 at no position (rate 0); the threshold widens that to "rate <= t".
// Routes: api/dead/fractions, api/dead/rates.
import { eventPoint, field, h, setChildren, stateToggle } from "../../dom.js";
import { colors, heatmap, lineChart, rateLegend } from "../../draw.js";
import { formatNumber, stepNote } from "../../format.js";
import { basePanel, layerView } from "../../layer_view.js";
import { atOrBefore } from "../../steps.js";
import { pager } from "../../widgets.js";
import { deadAt, deadSeries, sampleNote } from "./data.js";
import { LINES_UP_TO, cellText, drawLayerMap, fractionTable, sortRows } from "./layer_map.js";
import { showSemantics } from "./semantics.js";

export function create(root, shell) {
  const st = { threshold: 0, selected: -1, page: 0, sort: "order", expanded: false };
  let view;
  const legend = h("canvas", { class: "legend" });

  function setup(v) {
    view = v;
    const threshold = thresholdInput((t) => {
      st.threshold = t;
      view.update();
    });
    const legendBox = h(
      "div",
      { class: "legend-box" },
      legend,
      h("span", { class: "legend-text", text: "dead · activation rate 0 → 1" }),
    );
    const sort = stateToggle(st, "sort", LAYER_SORTS, () => view.redraw(), {
      class: "layer-sort",
      "aria-label": "sort layers by",
    });
    return {
      controls: [
        view.layerField,
        field("Dead if rate ≤", threshold),
        view.slider.el,
        legendBox,
        field("Sort layers", sort, { class: "field sort-field" }),
      ],
    };
  }

  function makePanel(run, layer) {
    const p = basePanel(run, layer);
    Object.assign(p, { fractions: null, rates: null });
    p.chart = h("canvas", { class: "chart fraction-chart" });
    p.map = h("canvas", { class: "layer-map", title: "Click a row to show that layer's filters" });
    p.tip = h("div", { class: "map-tip", role: "status", hidden: true });
    p.mapAxes = h("div", { class: "heat-axes map-axes" });
    p.mapBox = h("div", { class: "map-box" }, p.map, p.tip, p.mapAxes);
    p.map.addEventListener("mousemove", (event) => mapHover(p, event));
    p.map.addEventListener("mouseleave", () => (p.tip.hidden = true));
    p.map.addEventListener("click", (event) => {
      const at = p.mapHit && p.mapHit(...eventPoint(event, p.map));
      if (at) view.selectLayer(p.mapRows[at.row].layer);
    });
    p.heat = h("canvas", { class: "heatmap", title: "Click: choose this step and filter" });
    p.heat.addEventListener("click", (event) => {
      if (!p.hit) return;
      const { column, row } = p.hit(...eventPoint(event, p.heat, true));
      st.selected = p.pageStart + row;
      view.slider.select(p.rates.steps[column]);
    });
    p.pager = pager((page) => {
      st.page = page;
      view.redraw();
    });
    p.pageStart = 0;
    p.list = h("div", { class: "dead-list" });
    p.axes = h("div", { class: "heat-axes" });
    p.figure = h(
      "div",
      { class: "figure" },
      h("div", { class: "chart-title", text: "Dead fraction per layer" }),
      p.chart,
      p.mapBox,
      h("div", {
        class: "chart-title heat-title",
        text: `Activation rate per filter (rows) and logged step (columns): ${layer}`,
      }),
      p.pager.el,
      h("div", { class: "heat-box" }, p.heat),
      p.axes,
    );
    p.el.append(p.figure, p.list);
    return p;
  }

  const width = () => (view.compared ? 380 : 560);
  const drawFractions = (p) => drawChart(p, view.state.step, st.sort, width());

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
    const steps = p.rates.steps;
    const filters = p.rates.rates.length ? p.rates.rates[0].length : 0;
    const page = p.pager.set(filters, FILTER_PAGE, st.page);
    st.page = page.page;
    p.pageStart = page.start;
    p.hit = heatmap(p.heat, {
      rates: p.rates.rates.map((row) => row.slice(page.start, page.stop)),
      threshold: st.threshold,
      column,
      selectedRow: st.selected - page.start,
      width: width(),
    }).hit;
    p.axes.textContent = `rows: filters ${page.start}–${Math.max(page.stop - 1, 0)} of ${filters} (top to bottom) · columns: steps ${steps[0]}–${steps[steps.length - 1]} · click a cell to pick its step and filter`;
    drawList(p, p.rates.rates[column] || [], step, st, sampleNote(p.rates, column), {
      more() {
        st.expanded = !st.expanded;
        view.redraw();
      },
      pick(f) {
        // a dead filter's chip: select it and turn the heat-map to its page
        Object.assign(st, { selected: f, page: Math.floor(f / FILTER_PAGE) });
        view.redraw();
      },
    });
    showSemantics(p.list, p.rates);
  }

  return layerView(root, shell, {
    name: "dead",
    nothing: "dead-filter statistics",
    layerLabel: "Heat-map layer",
    kind: "dead_filters",
    onLayer: () => Object.assign(st, { selected: -1, page: 0, expanded: false }),
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

const FILTER_PAGE = 128; // filters (rows) of the heat-map to a page: a 2048-filter layer stays under 360 px tall
const CHIPS = 48; // dead filters listed by number before "+N more"
const LAYER_SORTS = { order: "layer order", latest: "latest dead fraction" }; // the layer map's row orders

/** The dead threshold's number input, clamped to [0, 1] (not a number: 0); `change(threshold)` on a change. */
function thresholdInput(change) {
  const input = h("input", {
    type: "number",
    min: "0",
    max: "1",
    step: "0.01",
    value: "0",
    class: "threshold",
    "aria-label": "dead threshold",
  });
  input.addEventListener("change", () => {
    const t = Number(input.value);
    const threshold = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
    input.value = String(threshold);
    change(threshold);
  });
  return input;
}

/** The dead fraction of every layer over training, `width` px wide: a line per layer (the panel's layer bold),
 * the slider's `step` marked; past LINES_UP_TO layers the layers × steps map (drawMap) instead. */
function drawChart(p, step, sort, width) {
  if (!p.fractions) return;
  const many = p.fractions.layers.length > LINES_UP_TO;
  p.chart.hidden = many;
  p.mapBox.hidden = !many;
  if (many) return drawMap(p, step, sort, width);
  const c = colors();
  const lines = p.fractions.layers.map((l, i) => ({
    xs: l.steps,
    ys: l.dead_fraction,
    color: c.series[i % c.series.length],
    label: l.layer,
    width: l.layer === p.layer ? 2.5 : 1.5,
  }));
  lineChart(p.chart, { lines, marker: step, yRange: [0, 1], width, height: 150 });
}

/** The layers × steps map: rows sorted by `sort`, the slider's `step` marked, the heat-map layer outlined. */
function drawMap(p, step, sort, width) {
  const table = fractionTable(p.fractions.layers);
  p.mapRows = sortRows(table.rows, sort);
  p.mapSteps = table.steps;
  const column = table.steps.length ? atOrBefore(table.steps, step) : -1;
  p.mapHit = drawLayerMap(
    p.map,
    { steps: table.steps, rows: p.mapRows },
    { width, column, selected: p.layer },
  ).hit;
  p.map.dataset.rows = String(p.mapRows.length);
  const steps = table.steps;
  p.mapAxes.textContent = `rows: ${p.mapRows.length} layers (${sort === "latest" ? "highest latest dead fraction first" : "layer order"}) · columns: steps ${steps[0]}–${steps[steps.length - 1]} · colour: dead fraction 0 (grey) → 1 (red) · hatched: no dead filters defined for the layer, or not measured · hover for values, click a row for its filters`;
  p.map.dataset.sort = sort;
}

/** The layer map's tooltip: the values of the cell under the pointer (its row's latest without a column). */
function mapHover(p, event) {
  const [x, y] = eventPoint(event, p.map);
  const at = p.mapHit && p.mapHit(x, y);
  if (!at) return (p.tip.hidden = true);
  const row = p.mapRows[at.row];
  const column = at.column >= 0 ? at.column : row.values.length - 1;
  p.tip.textContent = cellText(row, p.mapSteps[column], column);
  p.tip.hidden = false;
  p.tip.style.left = `${Math.min(x + 12, p.map.clientWidth - 40)}px`;
  p.tip.style.top = `${y + 14}px`;
}

/** The filters dead at `step` (rate <= threshold), the batches they were counted on, and the selected filter's rate. */
function drawList(p, row, step, { threshold, selected, expanded }, sample, on) {
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
        (expanded ? deadNow : deadNow.slice(0, CHIPS)).map((f) =>
          h("li", {
            class: f === selected ? "chip on" : "chip",
            text: `#${f}`,
            title: "Show this filter in the heat-map",
            on: { click: () => on.pick(f) },
          }),
        ),
        deadNow.length > CHIPS
          ? h(
              "li",
              { class: "more" },
              h("button", {
                type: "button",
                class: "link-button chips-more",
                text: expanded ? "show fewer" : `+${deadNow.length - CHIPS} more`,
                on: { click: on.more },
              }),
            )
          : null,
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
