// Activations view, data: a logged step's tiles of one probe image and the probe image itself
// (PNGs decoded once into ImageBitmaps and kept, so scrubbing back is instant). No DOM here.
import { bitmap, loggedSteps, peekBitmap, peekStepJSON, stepJSON } from "../../api.js";

const ROUTE = "api/activations/step";

/** The logged steps of a layer's activation maps. */
export const activationSteps = (run, layer) => loggedSteps(run, "activations", layer);

/** Which image of the step's listing is shown for probe image `image`, and its URLs. */
function urls(data, image) {
  const index = Math.min(image, data.images.length - 1);
  const probe = data.probe && data.probe.images[Math.min(index, data.probe.images.length - 1)];
  return { index, grid: data.images[index], probe };
}

/** Whether a step of probe image `image` is in memory (no loading overlay). */
export function stepReady(run, layer, step, image) {
  const data = peekStepJSON(ROUTE, run, layer, step);
  if (!data) return false;
  const u = urls(data, image);
  return Boolean(peekBitmap(u.grid) && (!u.probe || peekBitmap(u.probe)));
}

/** Everything a panel draws at a step for probe image `image`: {data, index, grid, probe} (bitmaps). */
export async function activationStep(run, layer, step, image) {
  const data = await stepJSON(ROUTE, run, layer, step, 2048);
  const u = urls(data, image);
  const [grid, probe] = await Promise.all([bitmap(u.grid), u.probe ? bitmap(u.probe) : null]);
  return { data, index: u.index, grid, probe };
}
