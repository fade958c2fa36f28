// Patterns view, data: a logged step's pattern gallery (PNGs as bitmaps), one filter's detail
// (its kernel, activation rate, top images, the activation its pattern reached over training)
// and the DeepDreams of a run. No DOM here.
import { bitmap, loggedSteps, peekBitmap, peekStepJSON, seriesJSON, stepJSON } from "../../api.js";

const ROUTE = "api/patterns/step";

/** The logged steps of a layer's patterns. */
export const patternSteps = (run, layer) => loggedSteps(run, "patterns", layer);

/** Whether a step's gallery is in memory (no loading overlay). */
export function galleryReady(run, layer, step) {
  const data = peekStepJSON(ROUTE, run, layer, step);
  return Boolean(data && data.images.every((u) => peekBitmap(u)));
}

/** A step's gallery: {data, images} (one bitmap per filter, in data.channels' order). */
export async function gallery(run, layer, step) {
  const data = await stepJSON(ROUTE, run, layer, step);
  return { data, images: await Promise.all(data.images.map((u) => bitmap(u))) };
}

/** One filter's detail at a step (api/patterns/filter). */
export function filterInfo(run, layer, channel, step) {
  return seriesJSON("api/patterns/filter", { run, layer, channel, step });
}

/** Every DeepDream of `items` [{run, layer}], each with {data, images: [original, dream]} or {error}. */
export function dreams(items) {
  return Promise.all(
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
}
