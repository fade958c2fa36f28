// Text of numbers, steps, classes and runs (pure: no DOM, no fetching; tested in tests/frontend/).

/** `x` with `digits` decimals, or "–" when there is no number. */
export function formatNumber(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return Number(x).toFixed(digits);
}

/** A probability as a whole percentage ("37%"), or "–". */
export function percent(p) {
  return p === null || p === undefined ? "–" : `${Math.round(p * 100)}%`;
}

/** Three significant digits, or "–". */
export function precise(x) {
  return x === null || x === undefined ? "–" : Number(x).toPrecision(3);
}

/** What a panel shows against what the slider asks for: "step 40" or "step 40 (last logged at or before 45)". */
export function stepNote(shown, wanted, verb = "logged") {
  return shown === wanted ? `step ${shown}` : `step ${shown} (last ${verb} at or before ${wanted})`;
}

/** The name of class `index` ("circle"), "class 3" without names, "" without a class. */
export function className(names, index) {
  if (index === null || index === undefined || index < 0) return "";
  return names && names[index] !== undefined && names[index] !== null
    ? String(names[index])
    : `class ${index}`;
}

/** "circle (0)" / "label 3" / "cat.jpg · circle (0)" / "" for probe image `index` of a probe listing
 * {labels, class_names, names} (names: one per image, e.g. the file names of a CLI run). */
export function labelText(probe, index) {
  const file = probe && probe.names && probe.names[index] ? String(probe.names[index]) : "";
  if (!probe || !probe.labels || probe.labels[index] === undefined || probe.labels[index] === null)
    return file;
  const label = probe.labels[index];
  const name = probe.class_names && probe.class_names[label] !== undefined ? probe.class_names[label] : null;
  const text = name === null ? `label ${label}` : `${name} (${label})`;
  return file ? `${file} · ${text}` : text;
}

/** The selected runs' names for an empty state: "a or b", or "this run". */
export function runNames(runs) {
  return runs.map((r) => r.name).join(" or ") || "this run";
}

/** Natural sort ("conv2" before "conv10"). */
export function naturalCompare(a, b) {
  return String(a).localeCompare(String(b), undefined, { numeric: true, sensitivity: "base" });
}
