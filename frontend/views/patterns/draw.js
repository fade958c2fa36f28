// Patterns view, DOM and canvas: the gallery, a filter's detail beside its kernel, and the
// DeepDream cards. Never fetches (the view hands bitmaps and answers in).
import { h, message, setChildren } from "../../dom.js";
import { colors, drawFilter, lineChart } from "../../draw.js";
import { formatNumber, precise } from "../../format.js";

export const SIZES = { small: 48, medium: 72, large: 104 };
const LABEL_H = 16;
const GAP = 6;

/** Grid layout of `count` tiles of `tile` px in at most `width` px (a label line under each tile). */
export function galleryLayout(count, tile, width) {
  const cols = Math.max(1, Math.min(count, Math.floor((width + GAP) / (tile + GAP))));
  const rows = Math.ceil(count / cols);
  return { cols, rows, tile, width: cols * (tile + GAP) - GAP, height: rows * (tile + LABEL_H + GAP) - GAP };
}

/** Index of the tile under (x, y) CSS px of a gallery, or -1. */
export function galleryHit(layout, count, x, y) {
  const col = Math.floor(x / (layout.tile + GAP));
  const row = Math.floor(y / (layout.tile + LABEL_H + GAP));
  const i = row * layout.cols + col;
  return col < 0 || col >= layout.cols || row < 0 || i >= count ? -1 : i;
}

/** Draw the gallery: each pattern with its filter number and the activation it reached; returns the layout. */
export function drawGallery(canvas, data, images, { tile, width, selected }) {
  const L = galleryLayout(images.length, tile, width);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(L.width * dpr);
  canvas.height = Math.round(L.height * dpr);
  canvas.style.width = `${L.width}px`;
  canvas.style.height = `${L.height}px`;
  const ctx = canvas.getContext("2d");
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
    if (channel === selected) {
      ctx.strokeStyle = c.select;
      ctx.lineWidth = 3;
      ctx.strokeRect(x - 1.5, y - 1.5, L.tile + 3, L.tile + 3);
    }
    const failed = data.failed?.[i] === true;
    if (failed) {
      // a failed optimisation: crossed out, so a grey or noisy tile is not read as what the filter likes
      ctx.strokeStyle = c.dead;
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 1, L.tile - 2, L.tile - 2);
      ctx.beginPath();
      ctx.moveTo(x + 1, y + L.tile - 1);
      ctx.lineTo(x + L.tile - 1, y + 1);
      ctx.stroke();
    }
    ctx.fillStyle = channel === selected ? c.select : failed ? c.dead : c.muted;
    ctx.textAlign = "left";
    ctx.fillText(failed ? `#${channel} failed` : `#${channel}`, x, y + L.tile + 2);
    const value = data.values[i];
    if (value !== null && value !== undefined) {
      ctx.textAlign = "right";
      ctx.fillText(formatNumber(value, value >= 100 ? 0 : 2), x + L.tile, y + L.tile + 2);
    }
  });
  return L;
}

/** The pattern enlarged, and its kernel when the layer's kernels are logged. */
function figures(image, step, kernel) {
  const big = h("canvas", { class: "pattern-big" });
  const dpr = window.devicePixelRatio || 1;
  big.width = big.height = Math.round(144 * dpr);
  const bctx = big.getContext("2d");
  bctx.imageSmoothingEnabled = false;
  bctx.drawImage(image, 0, 0, big.width, big.height);
  const out = [h("figure", {}, big, h("figcaption", { text: `pattern, step ${step}` }))];
  if (!kernel) return out;
  const data = Float32Array.from(kernel.values.flat(2).map((v) => (v === null ? NaN : v)));
  const canvas = h("canvas", { class: "filter-big kernel-of-pattern" });
  const rgb = kernel.shape[0] === 3;
  drawFilter(canvas, { shape: [1, ...kernel.shape], data }, 0, {
    normalization: "per_filter",
    inputMode: rgb ? "rgb" : "mean",
    size: 144,
  });
  const text = `kernel ${kernel.shape.join("×")}, step ${kernel.step}${rgb ? "" : " (mean of inputs)"}`;
  out.push(h("figure", {}, canvas, h("figcaption", { text })));
  return out;
}

/** How the activation a pattern reached compares with its filter's best probe image, and whether it failed. */
export function reachedText(reached, best, failed, step) {
  if (reached === null || reached === undefined) return "not logged";
  let text = `${formatNumber(reached, 3)} at step ${step}`;
  if (best !== null && best !== undefined && best > 0)
    text += ` (${formatNumber(reached / best, 2)}× the best probe image's ${formatNumber(best, 3)})`;
  if (failed)
    text +=
      reached <= 0
        ? " — failed: the optimisation did not drive the filter above 0"
        : " — failed: a probe image drives the filter more";
  return text;
}

/** The rows of a filter's facts: number, activation reached, activation rate, dead or alive. */
function facts(layer, channel, reached, step, dead, best = null, failed = false) {
  const rateText = !dead
    ? "not logged for this layer"
    : dead.rate === null
      ? `not finite at step ${dead.step}`
      : `${formatNumber(dead.rate, 3)} at step ${dead.step}${dead.window ? ` (window ${dead.window} steps)` : ""}`;
  const status =
    !dead || dead.dead === null ? "unknown" : dead.dead ? "dead (never positive in the window)" : "alive";
  return [
    h("dt", { text: "Filter" }),
    h("dd", { text: `#${channel} of ${layer}` }),
    h("dt", { text: "Activation reached" }),
    h("dd", {
      class: "reached-value",
      text:
        reached === null || reached === undefined ? "not logged" : reachedText(reached, best, failed, step),
    }),
    h("dt", { text: "Activation rate" }),
    h("dd", { class: "rate-value", text: rateText }),
    h("dt", { text: "Status" }),
    h("dd", { class: `dead-status${dead && dead.dead ? " is-dead" : ""}`, text: status }),
  ];
}

/** A filter's detail into `box`; returns the element its top images go into. */
export function drawDetail(box, { layer, channel, data, image, info }) {
  const column = data.channels.indexOf(channel);
  const chart = h("canvas", { class: "chart reached-chart" });
  const side = h(
    "div",
    { class: "pattern-side" },
    h(
      "dl",
      {},
      facts(
        layer,
        channel,
        data.values[column],
        data.step,
        info.dead,
        data.reference?.[column] ?? null,
        data.failed?.[column] === true,
      ),
    ),
  );
  const history = info.values.steps.length > 1;
  if (history)
    side.append(
      h("div", { class: "chart-title", text: "Activation its pattern reached, over training" }),
      chart,
    );
  const top = h("div", { class: "pattern-top" });
  setChildren(
    box,
    h(
      "div",
      { class: "pattern-detail", dataset: { filter: String(channel) } },
      h("div", { class: "pattern-figures" }, figures(image, data.step, info.kernel)),
      side,
    ),
    top,
  );
  if (history)
    lineChart(chart, {
      lines: [
        {
          xs: info.values.steps,
          ys: info.values.values,
          color: colors().select,
          label: `filter #${channel}`,
        },
      ],
      marker: data.step,
      width: 300,
      height: 110,
    });
  return top;
}

/** The DeepDream section: one panel per run with dreams, one card per dream. */
export function drawDreams(box, runs, loaded, dreamLayers) {
  const side = runs.length > 1 ? 200 : 280;
  const perRun = runs
    .filter((run) => dreamLayers(run).length)
    .map((run) =>
      h(
        "article",
        { class: "panel dream-panel", dataset: { run: run.name } },
        h("h3", { class: "panel-title", text: run.name }),
        loaded.filter((item) => item.run === run).map((item) => dreamCard(item, side)),
      ),
    );
  box.hidden = false;
  setChildren(
    box,
    h("h3", { class: "section-title dream-title", text: "DeepDream" }),
    h("div", { class: "panels" }, perRun),
    h("p", {
      class: "hint",
      text: "Gradient ascent on the image for the L2 norm of the layers' activations (DeepDream, tb-cnnviz dream). The gain is that norm on the dream over the norm on the original image.",
    }),
  );
}

/** The settings of a dream as text ("2 octaves, scale 1.40, 10 steps each, lr 0.01"). */
export function dreamSettings(data) {
  return [
    data.octaves !== null ? `${data.octaves} octave${data.octaves === 1 ? "" : "s"}` : null,
    data.octave_scale !== null ? `scale ${formatNumber(data.octave_scale, 2)}` : null,
    data.optimisation_steps !== null ? `${data.optimisation_steps} steps each` : null,
    data.lr !== null ? `lr ${data.lr}` : null,
  ]
    .filter(Boolean)
    .join(", ");
}

function dreamCard(item, side) {
  if (item.error)
    return h(
      "div",
      { class: "dream-card", dataset: { layer: item.layer } },
      message(
        "error",
        `Could not load the dream on ${item.layer}`,
        h("p", { text: String(item.error.message || item.error) }),
      ),
    );
  const { data, images } = item;
  const gain =
    data.gain === null
      ? "undefined (the layers are silent on the original)"
      : `×${formatNumber(data.gain, 2)}`;
  const rows = [
    h("dt", { text: data.layers.length > 1 ? "Layers" : "Layer" }),
    h("dd", { class: "dream-layers", text: data.layers.join(", ") }),
    h("dt", { text: "Activation gain" }),
    h("dd", { class: "dream-gain", text: gain }),
    h("dt", { text: "Activation norm" }),
    h("dd", { text: `${precise(data.objective[0])} → ${precise(data.objective[1])}` }),
  ];
  const settings = dreamSettings(data);
  if (settings) rows.push(h("dt", { text: "Settings" }), h("dd", { text: settings }));
  if (data.size)
    rows.push(h("dt", { text: "Image" }), h("dd", { text: `${data.size[1]}×${data.size[0]} px` }));
  return h(
    "div",
    { class: "pattern-detail dream-card", dataset: { layer: item.layer, step: String(data.step) } },
    h(
      "div",
      { class: "pattern-figures" },
      dreamFigure(images[0], "original", side),
      dreamFigure(images[1], `dream, step ${data.step}`, side),
    ),
    h("div", { class: "pattern-side" }, h("dl", {}, rows)),
  );
}

/** Size of an image shown `side` px on its longer side (whole multiples when enlarging: crisp pixels). */
export function fitImage(width, height, side) {
  const fit = side / Math.max(width, height, 1);
  const scale = fit >= 1 ? Math.floor(fit) : fit;
  return {
    scale,
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  };
}

function dreamFigure(image, caption, side) {
  const { scale, width, height } = fitImage(image.width, image.height, side);
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
