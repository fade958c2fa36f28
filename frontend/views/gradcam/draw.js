// Grad-CAM view, DOM and canvas: the probe cards, one image's strip over training with its chart,
// and its attribution maps. Never fetches: pictures arrive as bitmaps or promises of bitmaps.
import { decodeFloat32 } from "../../api.js";
import { h, setChildren } from "../../dom.js";
import { colors, drawCam, lineChart, paintBitmap } from "../../draw.js";
import { jet } from "../../colors.js";
import { className, formatNumber, percent } from "../../format.js";
import { camNumber, explainsText, isOutlierStep, stretchedMap, upsampleBilinear } from "./explain.js";

const CARD = 112; // CSS px of one probe card
const OVERLAY_ALPHA = 0.5; // the heat map's weight over the image (summary.heatmap_overlay's alpha)

/**
 * The overlay drawn from a raw map exactly as the PNGs of older runs were made (grad_cam's upsampling, then
 * summary.heatmap_overlay): the map upsampled bilinearly to the probe image's size, stretched from its
 * minimum to its peak, coloured jet and blended at OVERLAY_ALPHA over the image; then drawn to `side` device
 * px like a logged PNG. Without a probe image the heat map alone, opaque, at `side` px. `values`: [N, mh, mw]
 * flat, image `i`.
 */
export function paintOverlayFromMap(canvas, probe, values, i, mh, mw, side) {
  const width = probe ? probe.width : Math.max(1, Math.round(side));
  const height = probe ? probe.height : width;
  const work = document.createElement("canvas");
  work.width = width;
  work.height = height;
  const wctx = work.getContext("2d");
  let base = null;
  if (probe) {
    wctx.drawImage(probe, 0, 0);
    base = wctx.getImageData(0, 0, width, height).data;
  }
  const heat = stretchedMap(
    upsampleBilinear(values.subarray(i * mh * mw, (i + 1) * mh * mw), mh, mw, height, width),
    0,
    width * height,
  );
  const img = wctx.createImageData(width, height);
  const a = base ? OVERLAY_ALPHA : 1;
  for (let k = 0; k < width * height; k++) {
    const colour = jet(heat[k]);
    for (let c = 0; c < 3; c++)
      img.data[k * 4 + c] = Math.round((base ? (1 - a) * base[k * 4 + c] : 0) + a * colour[c]);
    img.data[k * 4 + 3] = 255;
  }
  wctx.putImageData(img, 0, 0);
  paintBitmap(canvas, work, side, side);
  canvas.dataset.drawn = "true";
}

/** Label, the class the map explains and the prediction under a card (marked when they differ). */
function caption(names, item, explains) {
  const label = item.label !== null && item.label !== undefined ? item.label : item.target;
  const lines = [
    h("span", { class: "cam-label", text: `#${item.index} ${className(names, label) || ""}`.trim() }),
  ];
  const text = explainsText(item, names, explains);
  lines.push(
    h("span", { class: `cam-pred cam-explains${text.differ ? " differ" : ""}`, text: text.explains }),
  );
  if (item.predicted !== null && item.predicted !== undefined) {
    const wrong = item.misclassified === true;
    const right = item.misclassified === false;
    lines.push(
      h("span", {
        class: wrong ? "cam-pred wrong" : right ? "cam-pred right" : "cam-pred",
        text: `${wrong || text.differ ? "✗" : right ? "✓" : "→"} ${text.predicted}`,
        title: `predicted ${className(names, item.predicted)} with probability ${formatNumber(item.probability, 3)}; probability of the ${item.label !== null ? "label" : "target"}: ${formatNumber(item.target_probability, 3)}${text.differ ? "; the map shows the evidence for the explained class, not for the predicted one" : ""}`,
      }),
    );
  }
  if (item.cam_clipped)
    lines.push(
      h("span", {
        class: "cam-pred cam-clipped",
        text: `peak ${camNumber(item.cam_max)} > scale ${camNumber(item.cam_scale)}`,
        title:
          "This step's CAM peak is an outlier above the image's shared scale: clipped in the raw colouring",
      }),
    );
  return lines;
}

/** One probe card: the probe image under its heat-map (logged overlay or one drawn from the map, or raw CAM). */
export function camCard(item, { data, overlays, probes, maps, raw, explain }, selected, onClick) {
  const i = item.index;
  const base = h("canvas", { class: "cam-base" });
  const top = h("canvas", { class: "cam-overlay" });
  const probe = probes[Math.min(i, probes.length - 1)];
  const side = CARD * (window.devicePixelRatio || 1);
  if (probe) paintBitmap(base, probe, side, side);
  else base.hidden = true;
  const mapped = maps && maps.shape && i < maps.shape[0];
  if (raw && mapped) {
    // the raw CAM at its logged resolution (the layer's, e.g. 7×7; older runs: the input's), smoothed up to the card
    top.width = top.height = Math.round(side);
    const [, mh, mw] = maps.shape;
    drawCam(top, maps.values, i * mh * mw, mh, mw, maps.scale[i] || 0);
  } else if (overlays[i]) {
    paintBitmap(top, overlays[i], side, side);
  } else if (mapped) {
    paintOverlayFromMap(top, probe, maps.values, i, maps.shape[1], maps.shape[2], side);
  }
  top.classList.toggle("alone", !probe);
  return h(
    "button",
    {
      type: "button",
      role: "option",
      class: `cam-card${item.misclassified === true ? " misclassified" : ""}${i === selected ? " on" : ""}`,
      "aria-selected": String(i === selected),
      dataset: { index: String(i) },
      title: "Watch this image over training",
      on: { click: onClick },
    },
    h("div", { class: "cam-stack" }, base, top),
    h(
      "span",
      { class: "cam-caption" },
      caption(data.class_names, item, explain === "predicted" ? "predicted" : data.explains),
    ),
  );
}

/** Draw a bitmap promised by `picture` into `canvas` (`side` CSS px) and mark it drawn. */
function paintLater(canvas, picture, side) {
  picture
    .then((b) => {
      const px = side * (window.devicePixelRatio || 1);
      paintBitmap(canvas, b, px, px);
      canvas.dataset.drawn = "true";
    })
    .catch(() => {});
}

/** The strip of one probe image over training; `picture(url)` promises a bitmap, `onPick(step)` moves the slider. */
export function buildStrip(p, watch, picture, onPick) {
  const names = watch.class_names;
  const label = className(names, watch.label);
  p.watchTitle.textContent = `Probe #${watch.index}${label ? ` (${label})` : ""} over training — ${watch.steps.length} logged steps${watch.strip.length < watch.steps.length ? `, ${watch.strip.length} shown` : ""}; click one to go to its step`;
  const items = watch.strip.map((entry) => {
    const thumb = h("canvas", { class: "watch-thumb", width: "56", height: "56" });
    const at = watch.steps.indexOf(entry.step);
    const wrong = watch.label !== null && watch.predicted[at] !== null && watch.predicted[at] !== watch.label;
    const outlier = isOutlierStep(watch.cam_outliers, entry.step);
    const ctx = thumb.getContext("2d");
    if (entry.overlay)
      picture(entry.overlay)
        .then((b) => {
          ctx.imageSmoothingEnabled = false;
          ctx.drawImage(b, 0, 0, 56, 56);
          thumb.dataset.drawn = "true";
        })
        .catch(() => {});
    else if (entry.map) paintStripMap(thumb, entry.map, watch.probe_image, picture);
    return h(
      "button",
      {
        type: "button",
        class: `watch-item${wrong ? " misclassified" : ""}${outlier ? " outlier" : ""}`,
        dataset: { step: String(entry.step) },
        title: `step ${entry.step}: predicted ${className(names, watch.predicted[at]) || "?"} (${percent(watch.probability[at])})${outlier ? `; CAM peak ${camNumber(watch.cam_max[at])}, above the shared scale (${camNumber(watch.cam_scale)})` : ""}`,
        on: { click: () => onPick(entry.step) },
      },
      thumb,
      h("span", { text: `${entry.step}${outlier ? " ▲" : ""}` }),
    );
  });
  setChildren(p.strip, items);
}

/** A strip thumbnail drawn from the image's raw map at that step, over the probe image when it was logged. */
function paintStripMap(thumb, map, probeUrl, picture) {
  const [mh, mw] = map.shape;
  const values = decodeFloat32(map.data);
  const paint = (probe) => paintOverlayFromMap(thumb, probe, values, 0, mh, mw, 56);
  if (!probeUrl) return paint(null);
  picture(probeUrl)
    .then(paint)
    .catch(() => paint(null));
}

/** Mark the strip's item at the last step <= `step`. */
export function markStrip(p, step) {
  let best = null;
  for (const item of p.strip.children) {
    const s = Number(item.dataset.step);
    if (s <= step && (best === null || s > Number(best.dataset.step))) best = item;
  }
  for (const item of p.strip.children) item.classList.toggle("on", item === best);
}

/** Probabilities and the CAM peak of the watched image over training (÷ its shared scale, outliers clipped at 1). */
export function drawWatchChart(p, watch, step, width) {
  const c = colors();
  const finite = watch.cam_max.filter((v) => v !== null && Number.isFinite(v));
  const peak = watch.cam_scale > 0 ? watch.cam_scale : Math.max(0, ...finite);
  const clipped = finite.some((v) => v > peak);
  const lines = [
    {
      xs: watch.steps,
      ys: watch.target_probability,
      color: c.series[2],
      label: watch.label !== null ? "p(label)" : "p(target)",
      width: 2,
    },
    { xs: watch.steps, ys: watch.probability, color: c.series[1], label: "p(predicted)", dash: [4, 3] },
  ];
  if (peak > 0)
    lines.push({
      xs: watch.steps,
      ys: watch.cam_max.map((v) => (v === null ? null : Math.min(1, v / peak))),
      color: c.series[4],
      label: `CAM peak ÷ ${camNumber(peak)}${clipped ? " (outliers clipped at 1)" : ""}`,
      width: 1,
    });
  lineChart(p.chart, { lines, marker: step, yRange: [0, 1], width, height: 130 });
}

/** The image, its Grad-CAM and its attribution maps side by side (unchanged ones are not redrawn). */
export function drawAttributions(p, loaded, index, picture) {
  const { data } = loaded;
  const maps = (data.attributions || []).filter((a) => index < a.images.length);
  const key = `${index}|${data.step}|${maps.map((a) => a.images[index]).join("|")}`;
  if (p.attributionKey === key) return; // already shown: no flicker while the slider moves
  p.attributionKey = key;
  if (!maps.length) return setChildren(p.attributions);
  const probeUrl = data.probe && data.probe.images[Math.min(index, data.probe.images.length - 1)];
  const entries = [
    ...(probeUrl ? [{ label: "image", url: probeUrl }] : []),
    { label: `Grad-CAM (step ${data.step})`, url: data.images[index].overlay, cam: true },
    ...maps.map((a) => ({ label: `${a.method.replace(/_/g, " ")} (step ${a.step})`, url: a.images[index] })),
  ];
  const camMaps = loaded.maps;
  const figures = entries.map((entry) => {
    const canvas = h("canvas", { class: "attribution-map" });
    if (entry.url) paintLater(canvas, picture(entry.url), 96);
    else if (entry.cam && camMaps && camMaps.shape && index < camMaps.shape[0]) {
      const probe = loaded.probes[Math.min(index, loaded.probes.length - 1)] || null;
      const [, mh, mw] = camMaps.shape;
      paintOverlayFromMap(canvas, probe, camMaps.values, index, mh, mw, 96 * (window.devicePixelRatio || 1));
    }
    return h("figure", { class: "attribution" }, canvas, h("figcaption", { text: entry.label }));
  });
  setChildren(
    p.attributions,
    h("div", { class: "chart-title", text: `Attribution maps of probe #${index}` }),
    h("div", { class: "attribution-figures" }, figures),
  );
}

/**
 * A horizontal colour bar in the overlays' colormap (jet) from 0 to `top`, with `ticks`
 * ({value, t, text}) drawn under it; `width` CSS px. The numbers are also in `data-ticks`.
 */
export function drawColourBar(canvas, ticks, width) {
  const c = colors();
  const dpr = window.devicePixelRatio || 1;
  const barH = 12;
  const height = 30;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = 14;
  const span = width - 2 * pad;
  for (let x = 0; x < span; x++) {
    const [r, g, b] = jet(x / Math.max(1, span - 1));
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(pad + x, 0, 1, barH);
  }
  ctx.strokeStyle = c.muted;
  ctx.strokeRect(pad + 0.5, 0.5, span - 1, barH - 1);
  ctx.fillStyle = c.fg;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const tick of ticks) {
    const x = pad + tick.t * (span - 1);
    ctx.fillRect(Math.round(x), barH, 1, 3);
    ctx.fillText(tick.text, x, barH + 4);
  }
  canvas.dataset.ticks = ticks.map((t) => t.text).join(",");
}
