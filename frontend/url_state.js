// The state of the tab (view, runs, layer, step, filter, image) as a URL fragment, so that a link
// reproduces what one sees (pure: no DOM; tested in tests/frontend/url_state.test.js).
//
// The state is a query string: "view=filters&run=exp1&compare=exp2&layer=conv1&step=400&filter=3".
// A comparison of up to 4 runs repeats `compare` ("compare=exp2&compare=exp3"); `layers` (one per
// run, "run" first, "" for a run that follows the layer's role) keeps layers picked per panel, and
// `sync` how the runs line up ("fraction", "epoch"; "step" is the default, left out).
// Inside TensorBoard it is one key of TensorBoard's own fragment, whose format (tf_storage in
// TensorBoard 2.21) is "#<plugin>&key=value&..." with every key and value URI-encoded:
// "#cnnviz&cnnviz=view%3Dfilters%26step%3D400". TensorBoard keeps keys it does not know when it
// rewrites its fragment (checked with 2.21: on load and after its reload), so the address bar
// of the TensorBoard page is the link. Opened on its own (plugin_entry.html?name=cnnviz) the
// frame's own fragment holds the query string directly.

export const HASH_KEY = "cnnviz";
export const MAX_RUNS = 4; // runs compared side by side at most
const TAB = "__tab__"; // the fragment's component without "=": TensorBoard's active plugin
const TEXT_KEYS = ["view", "run", "layer", "sync"];
const LIST_KEYS = ["compare", "layers"]; // repeated keys, decoded as arrays
const COUNT_KEYS = ["step", "filter", "image"];
const KEYS = ["view", "run", "compare", "layer", "layers", "sync", ...COUNT_KEYS];

/** The state as a query string (keys in a fixed order; empty, null and non-integer counts left out). */
export function encodeState(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) {
    const value = state ? state[key] : null;
    if (value === null || value === undefined || value === "") continue;
    if (LIST_KEYS.includes(key)) {
      const list = (Array.isArray(value) ? value : [value]).map((v) =>
        v === null || v === undefined ? "" : String(v),
      );
      // compare: the runs compared (empty entries dropped); layers: kept only when one is set.
      if (key === "compare") for (const v of list.filter(Boolean)) params.append(key, v);
      else if (list.some(Boolean)) for (const v of list) params.append(key, v);
      continue;
    }
    if (COUNT_KEYS.includes(key) && !(Number.isSafeInteger(value) && value >= 0)) continue;
    params.set(key, String(value));
  }
  return params.toString();
}

/**
 * The state a query string holds: text keys as strings, `compare` and `layers` as arrays (at most 3
 * compared runs, so 4 in all; `layers` at most 4), counts as integers (a count that is not a whole
 * number, e.g. "step=abc", is left out); unknown keys are ignored. Leading "#" or "?" allowed.
 */
export function decodeState(text) {
  const params = new URLSearchParams(String(text || "").replace(/^[#?]/, ""));
  const state = {};
  for (const key of TEXT_KEYS) if (params.get(key)) state[key] = params.get(key);
  const compare = params
    .getAll("compare")
    .filter(Boolean)
    .slice(0, MAX_RUNS - 1);
  if (compare.length) state.compare = compare;
  const layers = params.getAll("layers").slice(0, MAX_RUNS);
  if (layers.some(Boolean)) state.layers = layers;
  for (const key of COUNT_KEYS) {
    const raw = params.get(key);
    if (raw !== null && /^\d{1,15}$/.test(raw)) state[key] = Number(raw);
  }
  return state;
}

/** TensorBoard's fragment as {__tab__, key: value} (its tf_storage parsing). */
function parseTensorBoardHash(hash) {
  const dict = {};
  for (const part of String(hash || "")
    .replace(/^#/, "")
    .split("&")) {
    if (!part) continue;
    const pair = part.split("=");
    if (pair.length === 1) dict[TAB] = pair[0];
    else if (pair.length === 2) {
      try {
        dict[decodeURIComponent(pair[0])] = decodeURIComponent(pair[1]);
      } catch (_) {
        /* malformed escape: TensorBoard would drop it too */
      }
    }
  }
  return dict;
}

/** The value of `key` in a TensorBoard fragment ("#cnnviz&cnnviz=..."), or null. */
export function tensorBoardHashValue(hash, key = HASH_KEY) {
  const dict = parseTensorBoardHash(hash);
  return Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : null;
}

/** TensorBoard's fragment with `key` set to `value` (removed when value is empty), the rest kept in order. */
export function withTensorBoardHashValue(hash, value, key = HASH_KEY) {
  const dict = parseTensorBoardHash(hash);
  if (value) dict[key] = value;
  else delete dict[key];
  const rest = Object.keys(dict)
    .filter((k) => k !== TAB)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(dict[k])}`)
    .join("&");
  const tab = dict[TAB] || "";
  return `#${rest ? `${tab}&${rest}` : tab}`;
}

/** TensorBoard's active plugin in its fragment ("#cnnviz&x=1" -> "cnnviz"), or "". */
export function tensorBoardTab(hash) {
  return parseTensorBoardHash(hash)[TAB] || "";
}
