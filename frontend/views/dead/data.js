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

/** What the window ending at a column was counted on ("dead" = dead on every counted batch); null if not recorded.
 * A layer with no dead filters defined (residual, none…) is sampled apart, on the fewest batches: said so. */
export function sampleNote(rates, column) {
  const counted = rates.batches_counted ? rates.batches_counted[column] : null;
  const seen = rates.batches_seen ? rates.batches_seen[column] : null;
  if (counted === null || counted === undefined || seen === null || seen === undefined) return null;
  const every = rates.count_every ? rates.count_every[column] : null;
  const semantics = rates.semantics || "relu";
  if (semantics !== "relu" && semantics !== "smooth") {
    const why =
      every && every > 1
        ? ` (one in ${every}: its rates are information only, so the overhead budget goes to the layers that report dead filters)`
        : "";
    return `Counted on ${counted} of ${seen} training batches of this window${why}.`;
  }
  const share =
    every && every > 1 ? ` (one in ${every}, to keep the counting within its overhead budget)` : "";
  return `Counted on ${counted} of ${seen} training batches of this window${share}: dead means dead on every counted batch.`;
}
