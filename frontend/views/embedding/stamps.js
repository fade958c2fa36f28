// Embedding view, pixels: the map's points (and misclassified rings) written straight into an RGBA
// buffer from precomputed anti-aliased coverage masks ("stamps"). Canvas 2D paths cost about
// 6 µs a circle in software Chromium (50,000 arcs: 300-450 ms a frame, measured with a flush,
// --disable-gpu); stamping the same 50,000 points costs a few milliseconds, so the map stays
// interactive with 50k points without WebGL. No DOM here (the colour parser takes a 2-D context).

/** Sub-pixel positions per axis: a point's centre is rounded to a quarter of a device pixel. */
export const SUBPIXEL = 4;

/**
 * Coverage masks of a disc of `radius` device px (`width` 0) or of a ring of that radius and line
 * `width`, at SUBPIXEL × SUBPIXEL sub-pixel offsets: {size, half, masks}, masks[oy * SUBPIXEL + ox]
 * a Float32Array size × size of the fraction of each pixel covered (sampled 4 × 4 in each pixel).
 */
export function stampMasks(radius, width = 0) {
  const reach = radius + width / 2 + 1;
  const half = Math.ceil(reach);
  const size = 2 * half + 1;
  const masks = [];
  const samples = 4;
  for (let oy = 0; oy < SUBPIXEL; oy++)
    for (let ox = 0; ox < SUBPIXEL; ox++) {
      const mask = new Float32Array(size * size);
      const cx = half + ox / SUBPIXEL;
      const cy = half + oy / SUBPIXEL;
      for (let py = 0; py < size; py++)
        for (let px = 0; px < size; px++) {
          let inside = 0;
          for (let sy = 0; sy < samples; sy++)
            for (let sx = 0; sx < samples; sx++) {
              const dx = px + (sx + 0.5) / samples - cx;
              const dy = py + (sy + 0.5) / samples - cy;
              const d = Math.sqrt(dx * dx + dy * dy);
              if (width > 0 ? Math.abs(d - radius) <= width / 2 : d <= radius) inside++;
            }
          mask[py * size + px] = inside / (samples * samples);
        }
      masks.push(mask);
    }
  return { size, half, masks };
}

/**
 * Blend `stamp` (from stampMasks) centred at device px (x, y) into `pixels` (RGBA bytes, `w` × `h`,
 * opaque) in colour `rgb` [r, g, b] at opacity `alpha`: out = a·colour + (1 − a)·out per pixel,
 * a = alpha × coverage. Parts outside the buffer are clipped. Returns whether anything was drawn.
 */
export function stamp(pixels, w, h, stamp, x, y, rgb, alpha) {
  const fx = Math.floor(x);
  const fy = Math.floor(y);
  const mask =
    stamp.masks[
      Math.min(SUBPIXEL - 1, Math.floor((y - fy) * SUBPIXEL)) * SUBPIXEL +
        Math.min(SUBPIXEL - 1, Math.floor((x - fx) * SUBPIXEL))
    ];
  const x0 = fx - stamp.half;
  const y0 = fy - stamp.half;
  const size = stamp.size;
  if (x0 >= w || y0 >= h || x0 + size <= 0 || y0 + size <= 0) return false;
  const [r, g, b] = rgb;
  const ya = Math.max(0, -y0);
  const yb = Math.min(size, h - y0);
  const xa = Math.max(0, -x0);
  const xb = Math.min(size, w - x0);
  for (let my = ya; my < yb; my++) {
    let at = ((y0 + my) * w + x0 + xa) * 4;
    let m = my * size + xa;
    for (let mx = xa; mx < xb; mx++, at += 4, m++) {
      const a = mask[m] * alpha;
      if (a === 0) continue;
      const keep = 1 - a;
      pixels[at] = r * a + pixels[at] * keep;
      pixels[at + 1] = g * a + pixels[at + 1] * keep;
      pixels[at + 2] = b * a + pixels[at + 2] * keep;
    }
  }
  return true;
}

/** Fill an RGBA buffer with an opaque colour [r, g, b]. */
export function fillPixels(pixels, rgb) {
  const [r, g, b] = rgb;
  for (let at = 0; at < pixels.length; at += 4) {
    pixels[at] = r;
    pixels[at + 1] = g;
    pixels[at + 2] = b;
    pixels[at + 3] = 255;
  }
}

const parsed = new Map();

/** [r, g, b] of any CSS colour, read back from a 1 × 1 fill of `ctx` (cached per colour string). */
export function rgbOf(colour, ctx) {
  let rgb = parsed.get(colour);
  if (rgb) return rgb;
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.globalAlpha = 1;
  ctx.clearRect(0, 0, 1, 1);
  ctx.fillStyle = "#000";
  ctx.fillStyle = colour;
  ctx.fillRect(0, 0, 1, 1);
  const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
  ctx.restore();
  rgb = [r, g, b];
  if (parsed.size > 512) parsed.clear();
  parsed.set(colour, rgb);
  return rgb;
}
