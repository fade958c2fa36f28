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
