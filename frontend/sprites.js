// Thumbnails of the embedding probe set, cut from the logged sprite atlases (loaded by api.js's
// sprites()): image `id` is cell `id` of the atlases taken in order, `columns` cells a row,
// `thumb` = [h, w] px. Used by the Embedding view (hover) and Top images.
import { colors } from "./draw.js";

/** Where image `id` sits: {atlas, sx, sy, w, h}, or null when out of range. */
export function cell(sheet, id) {
  if (!sheet || id === null || id === undefined || id < 0) return null;
  let start = 0;
  for (let a = 0; a < sheet.counts.length; a++) {
    if (id < start + sheet.counts[a]) {
      const j = id - start;
      const [h, w] = sheet.thumb;
      return {
        atlas: sheet.atlases[a],
        sx: (j % sheet.columns) * w,
        sy: Math.floor(j / sheet.columns) * h,
        w,
        h,
      };
    }
    start += sheet.counts[a];
  }
  return null;
}

/**
 * Draw thumbnail `id` into `canvas` (size × size CSS px), with a receptive-field `box`
 * [x0, y0, x1, y1] in input pixels of an `imageSize` = [h, w] input drawn over it.
 */
export function drawThumb(canvas, sheet, id, { size = 64, box = null, imageSize = null } = {}) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(size * dpr);
  canvas.height = Math.round(size * dpr);
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  const ctx = canvas.getContext("2d");
  const c = colors();
  const at = cell(sheet, id);
  if (!at) {
    ctx.fillStyle = c.grid;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    return false;
  }
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(at.atlas, at.sx, at.sy, at.w, at.h, 0, 0, canvas.width, canvas.height);
  if (box && imageSize) {
    const sx = canvas.width / imageSize[1];
    const sy = canvas.height / imageSize[0];
    const lw = Math.max(1, Math.round(1.5 * dpr));
    ctx.lineWidth = lw;
    ctx.strokeStyle = "rgba(0,0,0,0.55)";
    ctx.strokeRect(
      box[0] * sx + lw,
      box[1] * sy + lw,
      Math.max(1, (box[2] - box[0]) * sx) - lw,
      Math.max(1, (box[3] - box[1]) * sy) - lw,
    );
    ctx.strokeStyle = "#ffd54f";
    ctx.strokeRect(
      box[0] * sx + lw / 2,
      box[1] * sy + lw / 2,
      Math.max(1, (box[2] - box[0]) * sx) - lw,
      Math.max(1, (box[3] - box[1]) * sy) - lw,
    );
  }
  return true;
}
