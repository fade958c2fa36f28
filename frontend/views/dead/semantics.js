// Dead filters view, semantics: what a rate of 0 means for the layer shown, from the `semantics`
// and `measured_at` the writer recorded (see analysis/activation_points.py). "relu": dead (the
// ReLU never passes signal); "smooth": inactive (output and slope negligible everywhere); the others
// define no dead filters, and the list says why instead of counting any.
import { h } from "../../dom.js";

const NOTES = {
  relu: "ReLU follows: a filter with rate 0 is dead (the ReLU never passed its signal).",
  smooth:
    "Smooth nonlinearity (SiLU, GELU, Hardswish, Mish…): rate = share of positions where the output or its slope is not negligible (≥ 0.01); a filter with rate 0 is inactive, not dead.",
  residual:
    "Residual branch: it is added to another path before its ReLU, so its own sign says nothing about what the block passes. Not a dead-filter measurement.",
  none: "No nonlinearity follows this conv (e.g. ConvNeXt, a ViT patch embedding, a linear bottleneck, or a concatenation): dead filters are not defined.",
  gate: "Gate conv (its output goes through a sigmoid to scale another path, e.g. squeeze-excite): not a filter with a spatial map; not counted.",
  head: "Conv on a globally pooled 1×1 input (a head or an SE projection): not a filter with a spatial map; not counted.",
  unmeasured:
    "A nonlinearity follows, but no module outputs its input, so it could not be hooked: rates are the conv's own output, not a dead-filter measurement.",
};

/** The semantics of a rates payload ("relu" for runs written before it was recorded). */
export function semanticsOf(rates) {
  return (rates && rates.semantics) || "relu";
}

/** Put the layer's semantics note at the top of the filter list, and reword or replace its summary line. */
export function showSemantics(list, rates) {
  const semantics = semanticsOf(rates);
  const where = rates && rates.measured_at ? ` Measured at ${rates.measured_at}.` : "";
  const note = h("p", {
    class: `dead-semantics semantics-${semantics}`,
    "data-semantics": semantics,
    text: `${NOTES[semantics] || `Semantics: ${semantics}.`}${where}`,
  });
  const summary = list.querySelector(".dead-summary");
  if (summary && semantics === "smooth")
    summary.textContent = summary.textContent.replace(/dead/g, "inactive");
  if (summary && semantics !== "relu" && semantics !== "smooth") {
    summary.remove();
    const names = list.querySelector(".dead-filters");
    if (names) names.remove();
  }
  list.prepend(note);
}
