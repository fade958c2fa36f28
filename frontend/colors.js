// Colour scales (pure: no DOM; tested in tests/frontend/).

const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** Viridis, t in [0, 1] (clamped) -> [r, g, b]: linear between five anchors. */
export function viridis(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return VIRIDIS[i].map((a, k) => Math.round(a + (VIRIDIS[i + 1][k] - a) * f));
}

/** The "jet"-like map the logged Grad-CAM overlays use (blue → cyan → yellow → red), t in [0, 1]. */
export function jet(t) {
  const x = Math.min(1, Math.max(0, t));
  const clamp = (v) => Math.round(255 * Math.min(1, Math.max(0, v)));
  return [
    clamp(1.5 - Math.abs(4 * x - 3)),
    clamp(1.5 - Math.abs(4 * x - 2)),
    clamp(1.5 - Math.abs(4 * x - 1)),
  ];
}

// Tableau's 10 categorical colours (readable on light and dark panels), then 10 lighter ones,
// then golden-angle hues for more classes.
const CATEGORICAL = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
  "#a0cbe8",
  "#ffbe7d",
  "#ff9d9a",
  "#86bcb6",
  "#8cd17d",
  "#f1ce63",
  "#d4a6c8",
  "#fabfd2",
  "#d7b5a6",
  "#79706e",
];

/** Colour of class `i` (stable across steps and runs); grey for no class. */
export function categorical(i) {
  if (i === null || i === undefined || i < 0) return "#888888";
  if (i < CATEGORICAL.length) return CATEGORICAL[i];
  return `hsl(${Math.round((i * 137.508) % 360)}, 55%, 55%)`;
}

/** RGBA pixels of a raw CAM on a fixed scale: jet(value / scale), alpha growing with the value. */
export function camPixels(data, offset, count, scale) {
  const out = new Uint8ClampedArray(count * 4);
  for (let i = 0; i < count; i++) {
    const v = data[offset + i];
    const t = Number.isFinite(v) && scale > 0 ? Math.min(1, Math.max(0, v / scale)) : 0;
    const [r, g, b] = jet(t);
    out[i * 4] = r;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = b;
    out[i * 4 + 3] = Math.round(255 * Math.min(1, 0.15 + t));
  }
  return out;
}
