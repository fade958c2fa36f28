// Separability view, drawing: accuracy against depth (one curve per logged step, earlier ones
// fading, the chance level dashed) and the layers × steps heat map. Canvas only; the numbers come
// from data.js.
import { viridis } from "../../colors.js";
import { colors, sizeCanvas } from "../../draw.js";

const PAD = { l: 40, r: 12, t: 10, b: 64 };

/**
 * Accuracy (0..1) against depth: x = the layers in depth order (`labels`), one polyline per curve
 * ({ys, alpha}, the last drawn boldest), `chance` as a dashed line, `selected` layer marked.
 * Returns {hit(x) -> layer index}.
 */
export function depthChart(canvas, { labels, curves, chance, selected = -1, width = 520, height = 230 }) {
  const ctx = sizeCanvas(canvas, width, height);
  const c = colors();
  const W = width - PAD.l - PAD.r;
  const H = height - PAD.t - PAD.b;
  const n = labels.length;
  const px = (i) => PAD.l + (n > 1 ? (i / (n - 1)) * W : W / 2);
  const py = (y) => PAD.t + (1 - y) * H;
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let k = 0; k <= 4; k++) {
    const y = k / 4;
    ctx.strokeStyle = c.grid;
    ctx.beginPath();
    ctx.moveTo(PAD.l, Math.round(py(y)) + 0.5);
    ctx.lineTo(PAD.l + W, Math.round(py(y)) + 0.5);
    ctx.stroke();
    ctx.fillStyle = c.muted;
    ctx.fillText(y.toFixed(2), PAD.l - 4, py(y));
  }
  labels.forEach((label, i) => {
    ctx.save();
    ctx.translate(px(i), PAD.t + H + 6);
    ctx.rotate(-Math.PI / 6);
    ctx.fillStyle = i === selected ? c.fg : c.muted;
    ctx.fillText(label.length > 22 ? `…${label.slice(-21)}` : label, 0, 0);
    ctx.restore();
  });
  if (chance !== null && chance !== undefined) {
    ctx.strokeStyle = c.muted;
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(PAD.l, py(chance));
    ctx.lineTo(PAD.l + W, py(chance));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = c.muted;
    ctx.textAlign = "left";
    ctx.fillText(`chance ${chance.toFixed(2)}`, PAD.l + 4, py(chance) - 8);
  }
  curves.forEach((curve, j) => {
    const last = j === curves.length - 1;
    ctx.globalAlpha = curve.alpha;
    ctx.strokeStyle = c.series[0];
    ctx.fillStyle = c.series[0];
    ctx.lineWidth = last ? 2.5 : 1.5;
    ctx.beginPath();
    let pen = false;
    curve.ys.forEach((y, i) => {
      if (y === null) return void (pen = false);
      if (pen) ctx.lineTo(px(i), py(y));
      else ctx.moveTo(px(i), py(y));
      pen = true;
    });
    ctx.stroke();
    if (last)
      curve.ys.forEach((y, i) => {
        if (y === null) return;
        ctx.beginPath();
        ctx.arc(px(i), py(y), i === selected ? 5 : 3, 0, 2 * Math.PI);
        ctx.fill();
      });
  });
  ctx.globalAlpha = 1;
  return { hit: (x) => (n > 1 ? Math.max(0, Math.min(n - 1, Math.round(((x - PAD.l) / W) * (n - 1)))) : 0) };
}

/**
 * Layers (rows, depth order, named by `labels` on the left) × logged steps (columns) of accuracies in
 * [0, 1] (viridis; grey: none), `column` (the step shown) and `selectedRow` outlined.
 * Returns {hit(x, y) -> {row, column}}, or null left of the cells.
 */
export function accuracyHeatmap(canvas, { rows, labels, column = -1, selectedRow = -1, width = 520 }) {
  const layers = rows.length;
  const steps = layers ? rows[0].length : 0;
  const left = 150;
  const cellW = Math.max(2, Math.min(40, Math.floor((width - left) / Math.max(steps, 1))));
  const cellH = 18;
  const w = left + Math.max(steps * cellW, 1);
  const ht = Math.max(layers * cellH, 1);
  const ctx = sizeCanvas(canvas, w, ht);
  const c = colors();
  ctx.clearRect(0, 0, w, ht);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  rows.forEach((row, r) => {
    const label = labels[r] || "";
    ctx.fillStyle = r === selectedRow ? c.fg : c.muted;
    ctx.fillText(label.length > 24 ? `…${label.slice(-23)}` : label, left - 6, r * cellH + cellH / 2);
    row.forEach((v, s) => {
      const [R, G, B] = v === null ? [128, 128, 128] : viridis(v);
      ctx.fillStyle = `rgb(${R},${G},${B})`;
      ctx.fillRect(left + s * cellW, r * cellH, cellW, cellH);
    });
  });
  ctx.lineWidth = 2;
  if (column >= 0 && column < steps) {
    ctx.strokeStyle = c.accent;
    ctx.strokeRect(left + column * cellW + 1, 1, Math.max(cellW - 2, 1), ht - 2);
  }
  if (selectedRow >= 0 && selectedRow < layers) {
    ctx.strokeStyle = c.select;
    ctx.strokeRect(left + 1, selectedRow * cellH + 1, w - left - 2, cellH - 2);
  }
  return {
    hit: (x, y) =>
      x < left || !steps
        ? null
        : {
            column: Math.max(0, Math.min(steps - 1, Math.floor((x - left) / cellW))),
            row: Math.max(0, Math.min(layers - 1, Math.floor(y / cellH))),
          },
  };
}
