// Grad-CAM view, data: a logged step's cards (overlays, probe images, predictions), the raw CAMs
// for the shared-scale colouring, and one probe image's history over training. No DOM here.
import {
  bitmap,
  decodeFloat32,
  getJSON,
  loggedSteps,
  peekBitmap,
  peekStepJSON,
  seriesJSON,
  stable,
  stepJSON,
} from "../../api.js";
import { hasKind, layersWith } from "../../steps.js";

const ROUTE = "api/gradcam/step";
const mapsKey = (run, layer, step, explain) => `cammaps:${run}\u0000${layer}\u0000${step}\u0000${explain}`;

function mapsData(run, layer, step, explain) {
  return stable.get(
    mapsKey(run, layer, step, explain),
    async () => {
      const answer = await getJSON("api/gradcam/maps", { run, layer, step, explain });
      return { ...answer, values: decodeFloat32(answer.data), data: null };
    },
    (v) => v.values.length * 4,
  );
}

/**
 * The summary kind whose steps are a layer's Grad-CAM steps: the overlay PNGs of runs written before
 * issue #18 (`gradcam`), else the raw maps (`gradcam_maps`), from which the view draws the overlays.
 */
export const camKind = (run, layer) => (hasKind(run, layer, "gradcam") ? "gradcam" : "gradcam_maps");

/** The logged steps of a layer's Grad-CAM. */
export const camSteps = (run, layer) => loggedSteps(run, camKind(run, layer), layer);

/** The layers of a run with Grad-CAM (overlays or raw maps). */
export const camLayers = (run) => [
  ...new Set([...layersWith(run, "gradcam"), ...layersWith(run, "gradcam_maps")]),
];

/** Whether the predicted class's maps are shown: asked for, and logged (the maps explain the labels). */
export const explainsPredicted = (data, explain) =>
  explain === "predicted" && data.explains === "label" && Boolean(data.predicted_maps_logged);

/**
 * Whether the raw maps are needed: the raw colouring, the predicted class's maps, or no overlay PNG logged
 * (the overlays are drawn from the maps).
 */
const needsMaps = (data, raw, explain) =>
  Boolean(data.cam_shape) && (raw || explainsPredicted(data, explain) || data.images.some((x) => !x.overlay));

/** Whether a step is in memory (no loading overlay); `raw`: with the raw CAMs; `explain`: "target" or "predicted". */
export function camReady(run, layer, step, raw, explain = "target") {
  const data = peekStepJSON(ROUTE, run, layer, step);
  if (!data) return false;
  const probes = data.probe ? data.probe.images : [];
  return (
    (explainsPredicted(data, explain) || data.images.every((x) => !x.overlay || peekBitmap(x.overlay))) &&
    probes.every((u) => peekBitmap(u)) &&
    (!needsMaps(data, raw, explain) ||
      stable.has(mapsKey(run, layer, step, explainsPredicted(data, explain) ? "predicted" : "target")))
  );
}

/**
 * Everything the cards of a step need: {data, overlays, probes, maps, raw}: `overlays[i]` is the logged PNG
 * (null when the run logged none), `maps` the raw CAMs when the raw colouring or a missing overlay needs them.
 */
export async function camStep(run, layer, step, raw, explain = "target") {
  const data = await stepJSON(ROUTE, run, layer, step);
  const predicted = explainsPredicted(data, explain); // the logged overlays are the label's: drawn from the maps
  const [overlays, probes, maps] = await Promise.all([
    Promise.all(data.images.map((x) => (x.overlay && !predicted ? bitmap(x.overlay) : null))),
    Promise.all((data.probe ? data.probe.images : []).map((u) => bitmap(u))),
    needsMaps(data, raw, explain) ? mapsData(run, layer, step, predicted ? "predicted" : "target") : null,
  ]);
  return {
    data,
    overlays,
    probes,
    maps,
    raw: raw && Boolean(maps),
    explain: predicted ? "predicted" : "target",
  };
}

/** Probe image `index` over training (api/gradcam/image): steps, predictions, a strip of `limit` overlays
 * (`explain` "predicted": drawn from the predicted class's maps). */
export function watchSeries(run, layer, index, limit, explain = "target") {
  return seriesJSON("api/gradcam/image", { run, layer, index, limit, explain });
}
