// Grad-CAM view, what a picture shows (pure: no DOM; tested in tests/frontend/gradcam_explains.test.js):
// the class a map explains against the predicted one, the colour bar's ticks, the map's native
// resolution and the steps whose CAM peak lies above the shared scale.
import { className, percent } from "../../format.js";

/** A raw CAM value, short: three significant digits, powers of ten as "3.8e9" ("–" when unknown). */
export function camNumber(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(1).replace("e+", "e").replace(".0e", "e");
  return String(Number(x.toPrecision(3)));
}

/** Round tick values from 0 to `top` (at most `count` + 1 of them), each with its place `t` in [0, 1]. */
export function colourBarTicks(top, count = 4) {
  if (!(Number.isFinite(top) && top > 0)) return [];
  const rough = top / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) || 10 * power;
  const ticks = [];
  for (let k = 0; k * step <= top * (1 + 1e-9); k++) {
    const value = Number((k * step).toPrecision(12));
    ticks.push({ value, t: value / top, text: camNumber(value) });
  }
  // the top itself when the round ticks stop well short of it (its label would not collide)
  if (ticks[ticks.length - 1].t < 0.85) ticks.push({ value: top, t: 1, text: camNumber(top) });
  return ticks;
}

/**
 * What a card's map explains and what the network predicted: {explains, predicted, differ}.
 * `explains` is "label" (the probe images have labels: the callback explains them) or "predicted".
 */
export function explainsText(item, names, explains) {
  const target = item.target !== null && item.target !== undefined ? item.target : item.label;
  const known = (v) => v !== null && v !== undefined && v >= 0;
  const p = known(item.predicted) ? item.probability : null;
  return {
    explains: known(target)
      ? `explains ${className(names, target)} (${explains === "predicted" ? "predicted" : "label"})`
      : "explains –",
    predicted: known(item.predicted) ? `predicted ${className(names, item.predicted)} (${percent(p)})` : "",
    differ: known(target) && known(item.predicted) && target !== item.predicted,
  };
}

/**
 * The view's line on which class the maps explain; `explain` is the view's choice ("target": the logged
 * explained class, "predicted": each image's predicted class, drawn from its own logged maps).
 */
export function explainsNote(data, explain = "target") {
  if (data.explains === "predicted")
    return "Maps explain the predicted class (no labels logged with the probe images).";
  const differ = data.images.filter(
    (x) => x.target !== null && x.predicted !== null && x.target >= 0 && x.target !== x.predicted,
  ).length;
  const which = differ ? ` (${differ} image${differ === 1 ? "" : "s"} predicted otherwise at this step)` : "";
  if (explain === "predicted")
    return `Maps explain each image's predicted class${which}; "Explain: label" shows the label's.`;
  if (data.predicted_maps_logged)
    return `Maps explain the label${which}; "Explain: predicted class" shows the predicted class's maps.`;
  return `Maps explain the label; the predicted class's map is not logged${which}.`;
}

/**
 * A card's item as the predicted class's map explains it: the predicted class as the target, the map's
 * peak and whether this step's peak is an outlier above its shared scale from `maps` (api/gradcam/maps with
 * explain=predicted: values [N, h, w], scale, outlier_steps).
 */
export function predictedItem(item, maps, step) {
  const i = item.index;
  let peak = null;
  if (maps && maps.shape && i < maps.shape[0]) {
    const n = maps.shape[1] * maps.shape[2];
    for (let k = i * n; k < (i + 1) * n; k++)
      if (Number.isFinite(maps.values[k]) && (peak === null || maps.values[k] > peak)) peak = maps.values[k];
  }
  return {
    ...item,
    target: item.predicted,
    target_probability: item.probability,
    cam_max: peak,
    cam_scale: maps && maps.scale ? maps.scale[i] : null,
    cam_clipped: (maps && maps.outlier_steps ? maps.outlier_steps : []).some(
      (o) => o.step === step && o.images.includes(i),
    ),
  };
}

/** "layer4: 2×2 map, upsampled to 64×64 for display", from the logged maps' shape and the overlay's size. */
export function nativeNote(layer, camShape, overlay) {
  const display = overlay && overlay.width ? `${overlay.height}×${overlay.width}` : null;
  if (!camShape || camShape.length < 3)
    return `${layer}: raw map not logged${display ? `; overlay logged at ${display}` : ""}`;
  const [, mh, mw] = camShape;
  const same = display === `${mh}×${mw}`;
  return `${layer}: ${mh}×${mw} map${same ? " (stored at the input's size)" : display ? `, upsampled to ${display} for display` : ""}`;
}

/** The outlier steps of a panel's maps as text: "step 50: peak 3.8e9, above the shared scale". */
export function outlierText(outliers) {
  if (!outliers || !outliers.length) return "";
  const shown = outliers.slice(0, 3).map((o) => `step ${o.step}: peak ${camNumber(o.peak)}`);
  const more = outliers.length > 3 ? ` and ${outliers.length - 3} more steps` : "";
  return `${shown.join("; ")}${more}, above the shared scale (clipped in the raw colouring; the scale ignores ${outliers.length === 1 ? "it" : "them"})`;
}

/** Whether `step` is one of the outlier steps (a map clipped at the top of the shared scale). */
export function isOutlierStep(outliers, step) {
  return (outliers || []).some((o) => o.step === step);
}

/**
 * Image `i`'s map (`count` values from `offset` of `values`) stretched to [0, 1] from its own minimum to its
 * peak, as the overlay PNGs of older runs were (snapshots.images.per_image_unit): a constant map is all 0,
 * a non-finite value counts as 0.
 */
export function stretchedMap(values, offset, count) {
  const out = new Float32Array(count);
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < count; i++) {
    const v = values[offset + i];
    out[i] = Number.isFinite(v) ? v : 0;
    if (out[i] < low) low = out[i];
    if (out[i] > high) high = out[i];
  }
  const span = high - low;
  for (let i = 0; i < count; i++) out[i] = span > 0 ? (out[i] - low) / span : 0;
  return out;
}

/**
 * A `h`×`w` map resampled to `outH`×`outW` bilinearly with half-pixel centres (torch's
 * `interpolate(mode="bilinear", align_corners=False)`, as grad_cam upsamples its maps).
 */
export function upsampleBilinear(map, h, w, outH, outW) {
  const out = new Float32Array(outH * outW);
  const axis = (size, outSize) => {
    const index0 = new Int32Array(outSize);
    const index1 = new Int32Array(outSize);
    const weight = new Float32Array(outSize);
    for (let o = 0; o < outSize; o++) {
      const x = Math.max(0, ((o + 0.5) * size) / outSize - 0.5);
      const i = Math.min(Math.floor(x), size - 1);
      index0[o] = i;
      index1[o] = Math.min(i + 1, size - 1);
      weight[o] = x - i;
    }
    return { index0, index1, weight };
  };
  const ys = axis(h, outH);
  const xs = axis(w, outW);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.index0[y] * w;
    const r1 = ys.index1[y] * w;
    const fy = ys.weight[y];
    for (let x = 0; x < outW; x++) {
      const c0 = xs.index0[x];
      const c1 = xs.index1[x];
      const fx = xs.weight[x];
      const top = map[r0 + c0] * (1 - fx) + map[r0 + c1] * fx;
      const bottom = map[r1 + c0] * (1 - fx) + map[r1 + c1] * fx;
      out[y * outW + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
