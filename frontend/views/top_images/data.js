// Top images, data: per layer and logged step, the probe images that activate each filter most
// (api/top_images/examples), and a filter's own strip (api/patterns/filter sends it too). No DOM here.
import { bitmap, getJSON, loggedSteps, sprites, stable } from "../../api.js";

const key = (run, layer, step, channel) => `top:${run}\u0000${layer}\u0000${step}\u0000${channel}`;

/** The overview of a layer (`channel` null: each filter's best image) or one filter's examples, at a logged step. */
export function topData(run, layer, step, channel) {
  const params = { run, layer, step };
  if (channel !== null && channel !== undefined) params.channel = channel;
  return stable.get(
    key(run, layer, step, channel ?? null),
    () => getJSON("api/top_images/examples", params),
    () => 8192,
  );
}

/** Whether a step's overview and filter `channel` are in memory (no loading overlay). */
export const topReady = (run, layer, step, channel) =>
  stable.has(key(run, layer, step, null)) && stable.has(key(run, layer, step, channel));

/** The logged steps of a layer's top images. */
export function topSteps(run, layer) {
  return loggedSteps(run, "top_examples", layer);
}

/** The thumbnails' atlases of a run (null when it logged none; a failure reads as none). */
export function spriteSheet(run) {
  return sprites(run).catch(() => null);
}

/** A logged PNG (overlay, probe image, pattern) as a decoded bitmap, cached. */
export const picture = (url) => bitmap(url);
