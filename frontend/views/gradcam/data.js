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

const ROUTE = "api/gradcam/step";
const mapsKey = (run, layer, step) => `cammaps:${run}\u0000${layer}\u0000${step}`;

function mapsData(run, layer, step) {
  return stable.get(
    mapsKey(run, layer, step),
    async () => {
      const answer = await getJSON("api/gradcam/maps", { run, layer, step });
      return { ...answer, values: decodeFloat32(answer.data), data: null };
    },
    (v) => v.values.length * 4,
  );
}

/** The logged steps of a layer's Grad-CAM. */
export const camSteps = (run, layer) => loggedSteps(run, "gradcam", layer);

/** Whether a step is in memory (no loading overlay); `raw`: with the raw CAMs. */
export function camReady(run, layer, step, raw) {
  const data = peekStepJSON(ROUTE, run, layer, step);
  if (!data) return false;
  const probes = data.probe ? data.probe.images : [];
  return (
    data.images.every((x) => peekBitmap(x.overlay)) &&
    probes.every((u) => peekBitmap(u)) &&
    (!raw || !data.cam_shape || stable.has(mapsKey(run, layer, step)))
  );
}

/** Everything the cards of a step need: {data, overlays, probes, maps} (maps only when `raw` and logged). */
export async function camStep(run, layer, step, raw) {
  const data = await stepJSON(ROUTE, run, layer, step);
  const [overlays, probes, maps] = await Promise.all([
    Promise.all(data.images.map((x) => bitmap(x.overlay))),
    Promise.all((data.probe ? data.probe.images : []).map((u) => bitmap(u))),
    raw && data.cam_shape ? mapsData(run, layer, step) : null,
  ]);
  return { data, overlays, probes, maps };
}

/** Probe image `index` over training (api/gradcam/image): steps, predictions, a strip of `limit` overlays. */
export function watchSeries(run, layer, index, limit) {
  return seriesJSON("api/gradcam/image", { run, layer, index, limit });
}
