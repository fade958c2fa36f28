// Thumbnails of the embedding probe set, cut from the logged sprite atlases: image `id` is cell `id`
// of the atlases taken in order, `columns` cells a row, `thumb` = [h, w] px. api.js's sprites()
// gives the atlases' URLs only; an atlas is loaded when a thumbnail in it is first needed
// (loadCells, or drawThumb on its own), so a map of 50,000 images loads none until one is shown.
// Used by the Embedding view (hover) and Top images.
import { bitmap, peekBitmap } from "./api.js";
import { colors } from "./draw.js";

/** Where image `id` sits: {atlas (its bitmap, null until loaded), url, sx, sy, w, h}, or null when out of range. */
export function cell(sheet, id) {
  if (!sheet || id === null || id === undefined || id < 0) return null;
  let start = 0;
  for (let a = 0; a < sheet.counts.length; a++) {
    if (id < start + sheet.counts[a]) {
      const j = id - start;
      const [h, w] = sheet.thumb;
      const url = sheet.atlases[a];
      return {
        atlas: peekBitmap(url) ?? null,
        url,
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

/** Load the atlases that hold images `ids` (each once; a failed one is skipped); resolves when done. */
export async function loadCells(sheet, ids) {
  const urls = new Set();
  for (const id of ids) {
    const at = cell(sheet, id);
    if (at && !at.atlas) urls.add(at.url);
  }
  await Promise.all([...urls].map((url) => bitmap(url).catch(() => null)));
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
  canvas.dataset.thumb = String(id);
  if (!at || !at.atlas) {
    ctx.fillStyle = c.grid;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (at) {
      // its atlas is not loaded yet: drawn when it is
      canvas.dataset.loading = "true";
      bitmap(at.url)
        .then(
          (atlas) =>
            canvas.dataset.thumb === String(id) && paintThumb(canvas, { ...at, atlas }, box, imageSize),
        )
        .catch(() => delete canvas.dataset.loading);
    }
    return false;
  }
  paintThumb(canvas, at, box, imageSize);
  return true;
}

function paintThumb(canvas, at, box, imageSize) {
  const dpr = window.devicePixelRatio || 1;
  delete canvas.dataset.loading;
  const ctx = canvas.getContext("2d");
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
