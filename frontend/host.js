// The link to the TensorBoard page around the plugin iframe.
//
// TensorBoard 2.21 (its plugin-host IPC, checked in webfiles.zip) accepts a
// `postMessage("experimental.bootstrap", origin, [port])` from a plugin frame and then sends
// JSON messages {type, id, payload, isReply} on that port; it broadcasts
// "experimental.DataReloaded" after every data load (the reload button, the auto-reload
// timer) and waits for a reply to each message. We listen for that to refresh, and follow
// TensorBoard's dark mode (class "dark-mode" on its <body>); standalone, the system's colour
// scheme. Either way the theme is one attribute, data-theme on <html>, that style.css keys off,
// and each change fires a "cnnviz-theme" event so that canvases redraw.

import { HASH_KEY, tensorBoardHashValue, tensorBoardTab, withTensorBoardHashValue } from "./url_state.js";

const DATA_RELOADED = "experimental.DataReloaded";

/** Connect to TensorBoard if the page is its plugin frame; `onReload()` runs on each data reload. */
export function connectToTensorBoard(onReload) {
  let parentDocument = null;
  try {
    if (window.parent && window.parent !== window) parentDocument = window.parent.document;
  } catch (_) {
    parentDocument = null; // another origin: stay standalone
  }
  if (!parentDocument) {
    followSystemTheme();
    return { connected: false };
  }
  const channel = new MessageChannel();
  const port = channel.port1;
  port.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    if (!message || message.isReply) return;
    if (message.type === DATA_RELOADED) onReload();
    port.postMessage(
      JSON.stringify({ type: message.type, id: message.id, payload: null, error: null, isReply: true }),
    );
  };
  window.parent.postMessage("experimental.bootstrap", window.location.origin, [channel.port2]);
  followTheme(parentDocument);
  return { connected: true };
}

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  window.dispatchEvent(new Event("cnnviz-theme"));
}

function followSystemTheme() {
  if (!window.matchMedia) return; // no preference to follow: the light default
  const query = window.matchMedia("(prefers-color-scheme: dark)");
  const apply = () => setTheme(query.matches ? "dark" : "light");
  apply();
  query.addEventListener("change", apply);
}

function followTheme(parentDocument) {
  const apply = () => {
    const body = parentDocument.body;
    if (!body) return;
    setTheme(body.classList.contains("dark-mode") ? "dark" : "light");
  };
  apply();
  if (parentDocument.body)
    new MutationObserver(apply).observe(parentDocument.body, {
      attributes: true,
      attributeFilter: ["class"],
    });
}

// ------------------------------------------------------------------ the link to what is shown
// The tab's state (url_state.js) lives in the URL fragment. TensorBoard owns the page's URL and
// runs the plugin in a same-origin iframe (data/plugin_entry.html?name=cnnviz): the state is
// written as the key "cnnviz" of TensorBoard's fragment ("#cnnviz&cnnviz=view%3D..."), which
// TensorBoard keeps, so its address bar is the link; it is also written to the frame's own
// fragment, so the plugin page opened on its own restores it too. history.replaceState adds no
// history entry and fires no hashchange (TensorBoard does not react).

/** TensorBoard's window when this page is its plugin frame (same origin), else null. */
function outerWindow() {
  try {
    if (window.parent && window.parent !== window && window.parent.location.href) return window.parent;
  } catch (_) {
    /* another origin */
  }
  return null;
}

/** The state a link holds: the frame's own fragment (the plugin page opened on its own) or TensorBoard's key. */
export function readLinkState() {
  const own = window.location.hash.replace(/^#/, "");
  if (own) return own;
  const outer = outerWindow();
  return outer ? tensorBoardHashValue(outer.location.hash) || "" : "";
}

/**
 * Write the state (an encoded query string) to the frame's fragment and, while the CNN Viz tab is
 * TensorBoard's active one, to TensorBoard's. Returns where the link lives: "tensorboard", "frame"
 * (inside a page whose address this frame cannot set) or "standalone" (the plugin page on its own).
 */
export function writeLinkState(text) {
  replaceHash(window, `#${text}`);
  if (window.parent === window) return "standalone";
  const outer = outerWindow();
  if (!outer || tensorBoardTab(outer.location.hash) !== HASH_KEY) return "frame";
  try {
    replaceHash(outer, withTensorBoardHashValue(outer.location.hash, text));
    return "tensorboard";
  } catch (_) {
    return "frame";
  }
}

/** The URL that reopens what is shown: TensorBoard's address when it holds the state, else the frame's. */
export function linkUrl() {
  const outer = outerWindow();
  if (outer && tensorBoardHashValue(outer.location.hash) === window.location.hash.replace(/^#/, ""))
    return outer.location.href;
  return window.location.href;
}

function replaceHash(win, hash) {
  if (win.location.hash === hash || (hash === "#" && !win.location.hash)) return;
  const url = new URL(win.location.href);
  url.hash = hash;
  win.history.replaceState(win.history.state, "", url.href);
}
