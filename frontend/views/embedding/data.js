// Embedding view, data: the 2-D map of the embedding probe set at a logged step (positions as
// float32, labels, predictions). No DOM here.
import { decodeFloat32, getJSON, loggedSteps, stable } from "../../api.js";

const key = (run, layer, step) => `emb:${run}\u0000${layer}\u0000${step}`;

/** The map at a logged step: the route's answer with `xy` decoded to a Float32Array [x0, y0, x1, y1, ...]. */
export function pointsData(run, layer, step) {
  return stable.get(
    key(run, layer, step),
    async () => {
      const answer = await getJSON("api/embedding/points", { run, layer, step });
      return { ...answer, xy: decodeFloat32(answer.xy) };
    },
    (v) => v.xy.length * 4 + v.count * 16,
  );
}

/** Whether a step's map is in memory (no loading overlay). */
export const pointsReady = (run, layer, step) => stable.has(key(run, layer, step));

/** The logged steps of a layer's map. */
export const embeddingSteps = (run, layer) => loggedSteps(run, "embedding", layer);
