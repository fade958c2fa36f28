// Grad-CAM view, faithfulness: are the maps telling the truth? For the selected probe image, its
// deletion and insertion curves (RISE: the explained class's probability as pixels are removed, or
// put back, in decreasing CAM order) next to those of a seeded random map; and the layer's mean gap
// over training. Images whose CAM is no better than random (deletion area not below the random
// map's by at least the route's min_gap) are flagged. Route: api/gradcam/faithfulness (logged only with faithfulness=True).
import { h, setChildren } from "../../dom.js";
import { seriesJSON } from "../../api.js";
import { colors, lineChart } from "../../draw.js";
import { formatNumber } from "../../format.js";
import { hasKind } from "../../steps.js";

const ROUTE = "api/gradcam/faithfulness";

/** A signed gap as text: "+0.123", "−0.045", "n/a" (null: not measured). */
export function gapText(gap) {
  if (gap === null || gap === undefined || !Number.isFinite(gap)) return "n/a";
  return `${gap >= 0 ? "+" : "−"}${formatNumber(Math.abs(gap), 3)}`;
}

/** The indices of the images flagged "no better than random" in an answer (null flags are not counted). */
export function flaggedImages(answer) {
  return answer.images.filter((x) => x.no_better_than_random === true).map((x) => x.index);
}

/** One line about image `index` of an answer: its areas and gap, and whether it is flagged. */
export function imageSummary(answer, index) {
  const x = answer.images[index];
  if (!x) return `No faithfulness data for probe #${index} at step ${answer.step}.`;
  const area = (v) => (v === null || v === undefined ? "n/a" : formatNumber(v, 3));
  const verdict =
    x.no_better_than_random === true
      ? " — CAM no better than random"
      : x.no_better_than_random === false
        ? ""
        : " — not measured";
  return (
    `Probe #${index} at step ${answer.step}: deletion area CAM ${area(x.deletion_cam)} vs random ` +
    `${area(x.deletion_random)} (gap ${gapText(x.deletion_gap)}), insertion area CAM ${area(x.insertion_cam)} ` +
    `vs random ${area(x.insertion_random)} (gap ${gapText(x.insertion_gap)})${verdict}`
  );
}

/** The flag line of a step: how many probe images are no better than random, and which. */
export function flagText(answer) {
  const flagged = flaggedImages(answer);
  if (!flagged.length) return `CAM better than random on every measured probe image at step ${answer.step}.`;
  return (
    `CAM no better than random (deletion gap < ${answer.min_gap}) on ${flagged.length} of ` +
    `${answer.images.length} probe images at step ${answer.step}: ${flagged.map((i) => `#${i}`).join(", ")}`
  );
}

/** The curves of image `index` as line-chart lines over the % of pixels removed or inserted. */
export function curveLines(answer, index, palette) {
  const x = answer.images[index];
  if (!x || !x.curves || !answer.fractions) return [];
  const xs = answer.fractions.map((f) => 100 * f);
  return [
    { xs, ys: x.curves.deletion_cam, color: palette[0], label: "deletion, CAM", width: 2 },
    { xs, ys: x.curves.deletion_random, color: palette[0], label: "deletion, random", dash: [4, 3] },
    { xs, ys: x.curves.insertion_cam, color: palette[2], label: "insertion, CAM", width: 2 },
    { xs, ys: x.curves.insertion_random, color: palette[2], label: "insertion, random", dash: [4, 3] },
  ];
}

/**
 * Draw (or hide) the faithfulness section of a Grad-CAM panel `p` for probe image `index` at `step`:
 * `live()` says whether the answer is still wanted (stale-answer guard), `width` the chart width.
 */
export async function drawFaithfulness(p, step, index, { live = () => true, width = 560 } = {}) {
  if (!p.faith) {
    p.faith = h("section", { class: "faithfulness" });
    p.watch.append(p.faith);
  }
  const shown = p.faithKey;
  p.faithKey = ""; // until this answer is drawn (a hint or an error replaces what was shown)
  if (!hasKind(p.run, p.layer, "faithfulness")) {
    const text =
      "Faithfulness of the maps not logged: faithfulness=True scores each CAM against a random map.";
    return setChildren(p.faith, h("p", { class: "hint", text }));
  }
  let answer;
  try {
    answer = await seriesJSON(ROUTE, { run: p.run.name, layer: p.layer, step });
  } catch (error) {
    if (live())
      setChildren(p.faith, h("p", { class: "hint", text: `Could not load faithfulness: ${error.message}` }));
    return;
  }
  if (!live()) return;
  if (!answer.logged) return setChildren(p.faith, h("p", { class: "hint", text: answer.hint }));
  const key = `${index}|${answer.step}|${answer.over_training.steps.join(",")}|${width}`;
  p.faithKey = key;
  if (shown === key) return; // already shown: no flicker while the slider moves
  const c = colors();
  const curves = h("canvas", { class: "chart faithfulness-curves" });
  const gaps = h("canvas", { class: "chart faithfulness-gaps" });
  const flagged = flaggedImages(answer);
  setChildren(
    p.faith,
    h("div", {
      class: "chart-title",
      text: `Is the Grad-CAM telling the truth? ${imageSummary(answer, index)}`,
    }),
    h("p", {
      class: "hint faithfulness-flag",
      text: flagText(answer),
      dataset: { flagged: flagged.join(",") },
      style: flagged.length ? { color: "var(--dead)" } : null,
    }),
    curves,
    h("div", { class: "chart-title", text: "Mean gap over training (> 0: the CAM beats a random map)" }),
    gaps,
  );
  p.faith.dataset.step = String(answer.step);
  p.faith.dataset.index = String(index);
  const lines = curveLines(answer, index, c.series);
  if (lines.length) lineChart(curves, { lines, yRange: [0, 1], width, height: 150, yLabel: "p(class)" });
  else curves.hidden = true;
  const over = answer.over_training;
  const first = over.steps[0];
  const last = over.steps[over.steps.length - 1];
  const values = [...over.deletion_gap, ...over.insertion_gap].filter(
    (v) => v !== null && Number.isFinite(v),
  );
  const reach = Math.max(0.05, 1.1 * Math.max(0, ...values.map(Math.abs))); // noise near 0 stays flat
  lineChart(gaps, {
    lines: [
      {
        xs: over.steps,
        ys: over.deletion_gap,
        color: c.series[0],
        label: "deletion gap (random − CAM)",
        width: 2,
      },
      { xs: over.steps, ys: over.insertion_gap, color: c.series[2], label: "insertion gap (CAM − random)" },
      { xs: [first, last], ys: [0, 0], color: c.muted, dash: [2, 3], width: 1 },
    ],
    marker: answer.step,
    yRange: [-reach, reach],
    width,
    height: 130,
  });
}
