// Dead filters view, data: every layer's dead fraction over training and one layer's activation
// rates, both at a threshold (rate <= threshold counts as dead). No DOM here.
import { seriesJSON } from "../../api.js";
import { hasKind } from "../../steps.js";

/** {fractions, rates} of a panel (rates null where the run has none at `layer`). */
export async function deadSeries(run, layer, threshold) {
  const [fractions, rates] = await Promise.all([
    seriesJSON("api/dead/fractions", { run: run.name, threshold }),
    hasKind(run, layer, "dead_filters")
      ? seriesJSON("api/dead/rates", { run: run.name, layer, threshold })
      : null,
  ]);
  return { fractions, rates };
}

/** Filters whose rate at a step is <= threshold (measured ones only). */
export function deadAt(row, threshold) {
  const dead = [];
  row.forEach((v, f) => {
    if (v !== null && v <= threshold) dead.push(f);
  });
  return dead;
}
