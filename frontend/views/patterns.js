// Patterns view: a layer's filter-pattern gallery (the image that maximises each filter, by
// activation maximisation) at a training step, with a step slider to watch the patterns form.
// Click a filter: its pattern beside its kernel (when the layer's kernels are logged), the
// activation its pattern reached over training, its activation rate and dead status (at the
// nearest measured step), and its most activating images (with a link to Top images).
// Below the gallery, when a run has DeepDreams (`tb-cnnviz dream`): a DeepDream panel with the
// original and the dreamed image side by side, the layers dreamed on and the activation gain.
// Routes: api/patterns/step, api/patterns/filter, api/patterns/dream (+ PNGs from api/runs/image, sprites).
import { bitmap, getJSON, peekBitmap, seriesJSON, stable } from "../api.js";
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
import { colors, drawFilter, lineChart } from "../draw.js";
import { drawThumb, sprites } from "../sprites.js";
import { frameScheduler, loadPanelSteps, panelSet, setLoading, stepSlider } from "../widgets.js";

export const id = "patterns";
export const title = "Patterns";

const layersOf = (run) => run.layers.filter((l) => l.kinds.patterns).map((l) => l.name);
const dreamsOf = (run) => run.layers.filter((l) => l.kinds.dream).map((l) => l.name);

export function hasData(run) {
  return layersOf(run).length > 0 || dreamsOf(run).length > 0;
}

const SIZES = { small: 48, medium: 72, large: 104 };
const LABEL_H = 16;
const GAP = 6;

function stepData(run, layer, step) {
  return stable.get(
    `pat:${run}\u0000${layer}\u0000${step}`,
    () => getJSON("api/patterns/step", { run, layer, step }),
    () => 4096,
  );
}

/** Grid layout of `count` tiles of `tile` px in at most `width` px. */
function layout(count, tile, width) {
  const cols = Math.max(1, Math.min(count, Math.floor((width + GAP) / (tile + GAP))));
  const rows = Math.ceil(count / cols);
  return { cols, rows, tile, width: cols * (tile + GAP) - GAP, height: rows * (tile + LABEL_H + GAP) - GAP };
}

export function create(root, shell) {
  const st = { layer: null, step: null, selected: null, size: "medium" };
  const scheduleDraw = frameScheduler(() => drawAll());
  let panels = [];
  let token = 0;

  const layerSelect = select(
    [],
    null,
    (v) => {
      st.layer = v;
      st.selected = null;
      shell.busy(update());
    },
    { class: "layer", "aria-label": "layer" },
  );
  const slider = stepSlider((step) => {
    st.step = step;
    scheduleDraw();
  });
  const size = toggle(
    Object.keys(SIZES).map((k) => ({ value: k, label: k })),
    st.size,
    (v) => {
      st.size = v;
      drawAll();
    },
    { class: "tile-size", "aria-label": "tile size" },
  );
  const controls = h(
    "div",
    { class: "controls" },
    field("Layer", layerSelect),
    slider.el,
    field("Tiles", size),
  );
  const panelRow = h("div", { class: "panels" });
  const runPanels = panelSet(panelRow, makePanel);
  const dreamBox = h("section", { class: "dream-section", hidden: true });
  setChildren(root, controls, panelRow, dreamBox);

  function makePanel(run, layer) {
    const p = { run, layer, steps: [], wanted: null, layout: null, data: null };
    p.canvas = h("canvas", {
      class: "pattern-grid",
      title: "Click a filter for its kernel, activation rate and top images",
    });
    p.canvas.addEventListener("click", (event) => {
      if (!p.layout || !p.data) return;
      const rect = p.canvas.getBoundingClientRect();
      const x = event.clientX - rect.left;
      const y = event.clientY - rect.top;
      const L = p.layout;
      const col = Math.floor(x / (L.tile + GAP));
      const row = Math.floor(y / (L.tile + LABEL_H + GAP));
      const i = row * L.cols + col;
      if (col < 0 || col >= L.cols || row < 0 || i >= p.data.channels.length) return;
      const channel = p.data.channels[i];
      st.selected = st.selected === channel ? null : channel;
      drawAll();
    });
    p.note = h("div", { class: "panel-note" });
    p.figure = h("div", { class: "figure" }, p.canvas);
    p.detail = h("div", { class: "detail" });
    p.el = h(
      "article",
      { class: "panel", dataset: { run: run.name } },
      h("h3", { class: "panel-title", text: run.name }),
      p.note,
      p.figure,
      p.detail,
    );
    return p;
  }

  async function update() {
    const my = ++token;
    const runs = shell.selectedRuns();
    const intent = shell.takeIntent(id);
    await Promise.all([updatePatterns(runs, intent, my), updateDreams(runs, my)]);
  }

  async function updatePatterns(runs, intent, my) {
    const layers = [...new Set(runs.flatMap(layersOf))].sort(naturalCompare);
    if (!layers.length) {
      controls.hidden = true;
      panels = runPanels.reset();
      if (runs.some((run) => dreamsOf(run).length)) {
        setChildren(panelRow); // only DeepDreams in this run: the DeepDream panel below is the view
        return;
      }
      setChildren(
        panelRow,
        message(
          "empty",
          `No filter patterns logged in ${runNames(runs)}`,
          h("p", {
            text: 'Pass pattern_layers=["features.conv2", ...] to CNNVizCallback: it then optimises an image for each of the first pattern_channels filters (every 1000 steps and at on_epoch_end, in the background on a copy of the model).',
          }),
        ),
      );
      return;
    }
    controls.hidden = false;
    if (intent && layers.includes(intent.layer)) {
      st.layer = intent.layer;
      st.selected = intent.filter ?? null;
    }
    if (!layers.includes(st.layer)) st.layer = layers[0];
    fillSelect(layerSelect, layers, st.layer);
    const layer = st.layer;
    panels = runPanels.sync(runs, layer);
    await loadPanelSteps(panels, "patterns", layer, () => my === token);
    if (my !== token) return;
    st.step = slider.setSteps(unionSteps(...panels.map((p) => p.steps)), st.step);
    drawAll();
  }

  function drawAll() {
    for (const p of panels) drawPanel(p);
  }

  async function drawPanel(p) {
    if (!p.steps.length) {
      p.note.textContent = "No patterns logged for this layer in this run.";
      p.canvas.hidden = true;
      setChildren(p.detail);
      return;
    }
    p.canvas.hidden = false;
    const i = atOrBefore(p.steps, st.step);
    const step = p.steps[i];
    p.wanted = step;
    const my = token;
    try {
      if (!stable.has(`pat:${p.run.name}\u0000${p.layer}\u0000${step}`)) setLoading(p.figure, true);
      const data = await stepData(p.run.name, p.layer, step);
      if (p.wanted !== step || my !== token) return;
      if (!data.images.every((u) => peekBitmap(u))) setLoading(p.figure, true);
      const images = await Promise.all(data.images.map((u) => bitmap(u)));
      if (p.wanted !== step || my !== token) return;
      setLoading(p.figure, false);
      p.data = data;
      paint(p, data, images, step);
      drawDetail(p, data, images);
      prefetch(p, i);
    } catch (error) {
      setLoading(p.figure, false);
      p.note.textContent = `Could not load step ${step}: ${error.message}`;
    }
  }

  function prefetch(p, i) {
    for (const j of [i + 1, i - 1]) {
      if (j < 0 || j >= p.steps.length) continue;
      stepData(p.run.name, p.layer, p.steps[j])
        .then((d) => Promise.all(d.images.map((u) => bitmap(u))))
        .catch(() => {});
    }
  }

  function paint(p, data, images, step) {
    const what = [
      `step ${step}${step === st.step ? "" : ` (last logged at or before ${st.step})`}`,
      `${data.channels.length} filters`,
    ];
    if (data.optimisation_steps)
      what.push(`${data.optimisation_steps} optimisation steps at ${data.size} px`);
    p.note.textContent = what.join(" · ");
    p.el.dataset.step = String(step);
    const width = panels.length > 1 ? 400 : 620;
    const L = layout(images.length, SIZES[st.size], width);
    p.layout = L;
    const dpr = window.devicePixelRatio || 1;
    p.canvas.width = Math.round(L.width * dpr);
    p.canvas.height = Math.round(L.height * dpr);
    p.canvas.style.width = `${L.width}px`;
    p.canvas.style.height = `${L.height}px`;
    const ctx = p.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const c = colors();
    ctx.clearRect(0, 0, L.width, L.height);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "top";
    images.forEach((image, i) => {
      const x = (i % L.cols) * (L.tile + GAP);
      const y = Math.floor(i / L.cols) * (L.tile + LABEL_H + GAP);
      ctx.imageSmoothingEnabled = image.width > L.tile; // smooth when shrinking, crisp pixels when enlarging
      ctx.drawImage(image, x, y, L.tile, L.tile);
      const channel = data.channels[i];
      if (channel === st.selected) {
        ctx.strokeStyle = c.select;
        ctx.lineWidth = 3;
        ctx.strokeRect(x - 1.5, y - 1.5, L.tile + 3, L.tile + 3);
      }
      ctx.fillStyle = channel === st.selected ? c.select : c.muted;
      ctx.textAlign = "left";
      ctx.fillText(`#${channel}`, x, y + L.tile + 2);
      const value = data.values[i];
      if (value !== null && value !== undefined) {
        ctx.textAlign = "right";
        ctx.fillText(formatNumber(value, value >= 100 ? 0 : 2), x + L.tile, y + L.tile + 2);
      }
    });
    p.canvas.dataset.step = String(step);
  }

  async function drawDetail(p, data, images) {
    const channel = st.selected;
    const column = channel === null ? -1 : data.channels.indexOf(channel);
    if (column < 0) {
      setChildren(
        p.detail,
        h("p", {
          class: "hint",
          text: "The number under each pattern is the activation it reached. Click a pattern to see it beside its kernel, with the filter's activation rate and top images.",
        }),
      );
      return;
    }
    const my = token;
    let info;
    try {
      info = await seriesJSON("api/patterns/filter", {
        run: p.run.name,
        layer: p.layer,
        channel,
        step: data.step,
      });
    } catch (error) {
      if (my === token)
        setChildren(
          p.detail,
          message(
            "error",
            `Could not load filter #${channel}`,
            h("p", { text: String(error.message || error) }),
          ),
        );
      return;
    }
    if (my !== token || st.selected !== channel || p.data !== data) return;
    const big = h("canvas", { class: "pattern-big" });
    const dpr = window.devicePixelRatio || 1;
    big.width = big.height = Math.round(144 * dpr);
    const bctx = big.getContext("2d");
    bctx.imageSmoothingEnabled = false;
    bctx.drawImage(images[column], 0, 0, big.width, big.height);
    const figures = [h("figure", {}, big, h("figcaption", { text: `pattern, step ${data.step}` }))];
    if (info.kernel) {
      const kernel = {
        shape: [1, ...info.kernel.shape],
        data: Float32Array.from(info.kernel.values.flat(2).map((v) => (v === null ? NaN : v))),
      };
      const canvas = h("canvas", { class: "filter-big kernel-of-pattern" });
      drawFilter(canvas, kernel, 0, {
        normalization: "per_filter",
        inputMode: info.kernel.shape[0] === 3 ? "rgb" : "mean",
        size: 144,
      });
      figures.push(
        h(
          "figure",
          {},
          canvas,
          h("figcaption", {
            text: `kernel ${info.kernel.shape.join("×")}, step ${info.kernel.step}${info.kernel.shape[0] === 3 ? "" : " (mean of inputs)"}`,
          }),
        ),
      );
    }
    const dead = info.dead;
    const rateText = !dead
      ? "not logged for this layer"
      : dead.rate === null
        ? `not finite at step ${dead.step}`
        : `${formatNumber(dead.rate, 3)} at step ${dead.step}${dead.window ? ` (window ${dead.window} steps)` : ""}`;
    const reached = data.values[column];
    const rows = [
      h("dt", { text: "Filter" }),
      h("dd", { text: `#${channel} of ${p.layer}` }),
      h("dt", { text: "Activation reached" }),
      h("dd", {
        class: "reached-value",
        text:
          reached === null || reached === undefined
            ? "not logged"
            : `${formatNumber(reached, 3)} at step ${data.step}`,
      }),
      h("dt", { text: "Activation rate" }),
      h("dd", { class: "rate-value", text: rateText }),
      h("dt", { text: "Status" }),
      h("dd", {
        class: `dead-status${dead && dead.dead ? " is-dead" : ""}`,
        text:
          !dead || dead.dead === null
            ? "unknown"
            : dead.dead
              ? "dead (never positive in the window)"
              : "alive",
      }),
    ];
    const chart = h("canvas", { class: "chart reached-chart" });
    const side = h("div", { class: "pattern-side" }, h("dl", {}, rows));
    if (info.values.steps.length > 1)
      side.append(
        h("div", { class: "chart-title", text: "Activation its pattern reached, over training" }),
        chart,
      );
    const top = h("div", { class: "pattern-top" });
    setChildren(
      p.detail,
      h(
        "div",
        { class: "pattern-detail", dataset: { filter: String(channel) } },
        h("div", { class: "pattern-figures" }, figures),
        side,
      ),
      top,
    );
    if (info.values.steps.length > 1) {
      const c = colors();
      lineChart(chart, {
        lines: [
          { xs: info.values.steps, ys: info.values.values, color: c.select, label: `filter #${channel}` },
        ],
        marker: data.step,
        width: 300,
        height: 110,
      });
    }
    drawTop(p, info, top);
  }

  async function drawTop(p, info, box) {
    if (!info.top) {
      setChildren(
        box,
        h("p", {
          class: "hint",
          text: "Top images are logged for the layers in top_example_layers when CNNVizCallback has an embedding_probe.",
        }),
      );
      return;
    }
    const link = h("button", {
      type: "button",
      class: "link-button open-top",
      text: "Top images ▸",
      title: "Open this filter in the Top images panel of the Embedding view",
      on: { click: () => shell.open("embedding", { layer: p.layer, filter: info.channel, run: p.run.name }) },
    });
    const head = h(
      "div",
      { class: "top-head" },
      h("span", { class: "chart-title", text: `Most activating probe images (step ${info.top.step})` }),
      link,
    );
    if (!info.top.examples.length) {
      setChildren(box, head, h("p", { class: "hint", text: "No examples recorded for this filter." }));
      return;
    }
    const sheet = await sprites(p.run).catch(() => null);
    const thumbs = info.top.examples.map((ex) => {
      const canvas = h("canvas", { class: "thumb top-thumb" });
      if (sheet) drawThumb(canvas, sheet, ex.id, { size: 56, box: ex.box, imageSize: info.top.image_size });
      return h(
        "figure",
        { class: "top-example", title: `image ${ex.id}: activation ${formatNumber(ex.activation, 3)}` },
        canvas,
        h("figcaption", { text: formatNumber(ex.activation, 2) }),
      );
    });
    setChildren(
      box,
      head,
      h("div", { class: "top-strip" }, thumbs),
      sheet
        ? null
        : h("p", { class: "hint", text: "Thumbnails need the sprites (logged with the embedding)." }),
    );
  }

  // ------------------------------------------------------------------------- DeepDream
  async function updateDreams(runs, my) {
    const items = runs.flatMap((run) => dreamsOf(run).map((layer) => ({ run, layer })));
    if (!items.length) {
      dreamBox.hidden = true;
      setChildren(dreamBox);
      return;
    }
    const loaded = await Promise.all(
      items.map(async (item) => {
        try {
          const data = await seriesJSON("api/patterns/dream", { run: item.run.name, layer: item.layer });
          const images = await Promise.all([bitmap(data.original), bitmap(data.dream)]);
          return { ...item, data, images };
        } catch (error) {
          return { ...item, error };
        }
      }),
    );
    if (my !== token) return;
    const side = runs.length > 1 ? 200 : 280;
    const perRun = runs
      .filter((run) => dreamsOf(run).length)
      .map((run) =>
        h(
          "article",
          { class: "panel dream-panel", dataset: { run: run.name } },
          h("h3", { class: "panel-title", text: run.name }),
          loaded.filter((item) => item.run === run).map((item) => dreamCard(item, side)),
        ),
      );
    dreamBox.hidden = false;
    setChildren(
      dreamBox,
      h("h3", { class: "section-title dream-title", text: "DeepDream" }),
      h("div", { class: "panels" }, perRun),
      h("p", {
        class: "hint",
        text: "Gradient ascent on the image for the L2 norm of the layers' activations (DeepDream, tb-cnnviz dream). The gain is that norm on the dream over the norm on the original image.",
      }),
    );
  }

  function dreamCard(item, side) {
    if (item.error) {
      return h(
        "div",
        { class: "dream-card", dataset: { layer: item.layer } },
        message(
          "error",
          `Could not load the dream on ${item.layer}`,
          h("p", { text: String(item.error.message || item.error) }),
        ),
      );
    }
    const { data, images } = item;
    const figures = [
      dreamFigure(images[0], "original", side),
      dreamFigure(images[1], `dream, step ${data.step}`, side),
    ];
    const precise = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(3));
    const gain =
      data.gain === null
        ? "undefined (the layers are silent on the original)"
        : `×${formatNumber(data.gain, 2)}`;
    const settings = [
      data.octaves !== null ? `${data.octaves} octave${data.octaves === 1 ? "" : "s"}` : null,
      data.octave_scale !== null ? `scale ${formatNumber(data.octave_scale, 2)}` : null,
      data.optimisation_steps !== null ? `${data.optimisation_steps} steps each` : null,
      data.lr !== null ? `lr ${data.lr}` : null,
    ].filter(Boolean);
    const rows = [
      h("dt", { text: data.layers.length > 1 ? "Layers" : "Layer" }),
      h("dd", { class: "dream-layers", text: data.layers.join(", ") }),
      h("dt", { text: "Activation gain" }),
      h("dd", { class: "dream-gain", text: gain }),
      h("dt", { text: "Activation norm" }),
      h("dd", { text: `${precise(data.objective[0])} → ${precise(data.objective[1])}` }),
    ];
    if (settings.length) rows.push(h("dt", { text: "Settings" }), h("dd", { text: settings.join(", ") }));
    if (data.size)
      rows.push(h("dt", { text: "Image" }), h("dd", { text: `${data.size[1]}×${data.size[0]} px` }));
    return h(
      "div",
      { class: "pattern-detail dream-card", dataset: { layer: item.layer, step: String(data.step) } },
      h("div", { class: "pattern-figures" }, figures),
      h("div", { class: "pattern-side" }, h("dl", {}, rows)),
    );
  }

  /** An image at its own aspect ratio, `side` px on its longer side (whole multiples when enlarging: crisp pixels). */
  function dreamFigure(image, caption, side) {
    const fit = side / Math.max(image.width, image.height, 1);
    const scale = fit >= 1 ? Math.floor(fit) : fit;
    const width = Math.max(1, Math.round(image.width * scale));
    const height = Math.max(1, Math.round(image.height * scale));
    const dpr = window.devicePixelRatio || 1;
    const canvas = h("canvas", {
      class: "dream-image",
      dataset: { natural: `${image.width}x${image.height}` },
    });
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    Object.assign(canvas.style, {
      width: `${width}px`,
      height: `${height}px`,
      imageRendering: scale >= 1 ? "pixelated" : "auto",
    });
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = scale < 1; // smooth when shrinking, crisp pixels when enlarging
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    canvas.dataset.drawn = "true";
    return h("figure", {}, canvas, h("figcaption", { text: caption, style: { maxWidth: `${width}px` } }));
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
