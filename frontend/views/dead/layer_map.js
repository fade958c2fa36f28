// Dead filters view, the layers × steps map: one row per layer (in the run's layer order, or
// sorted by the latest dead fraction), one column per logged step, each cell coloured by that
// layer's dead fraction. Replaces one line per layer past LINES_UP_TO layers (53 lines of a
// ResNet-50 were unreadable). The table and the sort are pure; drawLayerMap needs a canvas.
import { colors, sizeCanvas } from "../../draw.js";

export const LINES_UP_TO = 8; // more layers than this: the map instead of a line chart

/**
 * The api/dead/fractions layers as a table over the union of their steps:
 * {steps, rows: [{layer, semantics, filters, values (null: not measured or not defined), latest, order}]}.
 */
export function fractionTable(layers) {
  const steps = [...new Set(layers.flatMap((l) => l.steps))].sort((a, b) => a - b);
  const column = new Map(steps.map((s, i) => [s, i]));
  const rows = layers.map((l, order) => {
    const values = new Array(steps.length).fill(null);
    l.steps.forEach((s, i) => {
      const v = l.dead_fraction[i];
      values[column.get(s)] = typeof v === "number" && Number.isFinite(v) ? v : null;
    });
    const last = values.findLastIndex((v) => v !== null);
    return {
      layer: l.layer,
      semantics: l.semantics || "relu",
      filters: l.filters,
      values,
      latest: last >= 0 ? values[last] : null,
      order,
    };
  });
  return { steps, rows };
}

/** Rows in layer order ("order") or by latest dead fraction, highest first ("latest"; undefined ones last). */
export function sortRows(rows, by) {
  const order = (a, b) => a.order - b.order;
  if (by !== "latest") return [...rows].sort(order);
  const key = (r) => (r.latest === null ? -1 : r.latest);
  return [...rows].sort((a, b) => key(b) - key(a) || order(a, b));
}

/** One line of text for a cell: layer, step, dead fraction (and count) or why none is defined. */
export function cellText(row, step, column) {
  const v = row.values[column];
  const word = row.semantics === "smooth" ? "inactive" : "dead";
  if (row.semantics !== "relu" && row.semantics !== "smooth")
    return `${row.layer} · step ${step} · ${row.semantics}: no dead filters defined`;
  if (v === null) return `${row.layer} · step ${step} · not measured at this step`;
  const count = row.filters ? ` (${Math.round(v * row.filters)} of ${row.filters} filters)` : "";
  return `${row.layer} · step ${step} · ${word} fraction ${v.toFixed(3)}${count}`;
}

/** Geometry of the map for `rows` × `steps` about `width` CSS px wide. */
export function mapLayout(rowCount, stepCount, width) {
  const label = Math.min(170, Math.round(width * 0.34));
  const cellW = Math.max(2, Math.min(40, Math.floor((width - label - 4) / Math.max(stepCount, 1))));
  const cellH = Math.max(6, Math.min(14, Math.floor(520 / Math.max(rowCount, 1))));
  return { label, cellW, cellH, width: label + cellW * stepCount + 4, height: cellH * rowCount + 2 };
}

/**
 * Draw the map (rows already sorted); `column` marks the slider's step, `selected` outlines a layer.
 * Returns {hit(x, y) -> {row, column} | null} in CSS px.
 */
export function drawLayerMap(canvas, { steps, rows }, { width, column = -1, selected = null }) {
  const L = mapLayout(rows.length, steps.length, width);
  const ctx = sizeCanvas(canvas, L.width, L.height);
  const c = colors();
  ctx.clearRect(0, 0, L.width, L.height);
  ctx.font = `${Math.min(11, L.cellH)}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  rows.forEach((row, r) => {
    const y = 1 + r * L.cellH;
    ctx.fillStyle = row.layer === selected ? c.select : c.muted;
    let name = row.layer;
    while (name.length > 4 && ctx.measureText(name).width > L.label - 6) name = `…${name.slice(2)}`;
    ctx.fillText(name, L.label - 4, y + L.cellH / 2);
    const defined = row.semantics === "relu" || row.semantics === "smooth";
    row.values.forEach((v, s) => {
      const x = L.label + s * L.cellW;
      ctx.globalAlpha = 1;
      ctx.fillStyle = c.grid;
      ctx.fillRect(x, y, L.cellW - 1, L.cellH - 1);
      if (!defined || v === null) {
        // not defined (residual, none, gate…) or not measured: hatched grey
        ctx.strokeStyle = c.muted;
        ctx.globalAlpha = 0.5;
        ctx.beginPath();
        ctx.moveTo(x, y + L.cellH - 1);
        ctx.lineTo(x + Math.min(L.cellW, L.cellH) - 1, y);
        ctx.stroke();
      } else if (v > 0) {
        ctx.fillStyle = c.dead;
        ctx.globalAlpha = 0.15 + 0.85 * Math.sqrt(v);
        ctx.fillRect(x, y, L.cellW - 1, L.cellH - 1);
      }
    });
    ctx.globalAlpha = 1;
    if (row.layer === selected) {
      ctx.strokeStyle = c.select;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(L.label - 0.5, y - 0.5, L.cellW * steps.length, L.cellH);
      ctx.lineWidth = 1;
    }
  });
  if (column >= 0 && column < steps.length) {
    ctx.strokeStyle = c.accent;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(L.label + column * L.cellW - 0.5, 0.5, L.cellW, L.height - 1);
    ctx.lineWidth = 1;
  }
  return {
    hit(x, y) {
      const row = Math.floor((y - 1) / L.cellH);
      if (row < 0 || row >= rows.length || x < 0 || x > L.width) return null;
      const col = Math.floor((x - L.label) / L.cellW);
      return { row, column: col >= 0 && col < steps.length ? col : -1 };
    },
  };
}
