// CNN Viz: the TensorBoard plugin frontend (entry point; TensorBoard calls `render()` once).
//
// The shell owns the run selection (one run, or two side by side), the list of views, the
// reload wiring and the empty state. Each view is one module in ./views/ exporting
//   id, title, hasData(run)            — run = an entry of api/runs/list
//   create(root, shell) -> {update(), destroy(), redraw()?}
// and talks to its own backend route group (api/<id>/...). Adding a view = one module here
// plus one route group in tb_cnnviz/plugin_routes.py. A view links to another with
// shell.open(viewId, {layer, filter, ...}); the target view picks the intent up with
// shell.takeIntent(viewId) in its update().
import { reloadSeries, seriesJSON } from "./api.js";
import { field, fillSelect, h, message, select, setChildren, spinner } from "./dom.js";
import { connectToTensorBoard } from "./host.js";
import * as activations from "./views/activations.js";
import * as dead from "./views/dead.js";
import * as embedding from "./views/embedding.js";
import * as filters from "./views/filters.js";
import * as gradcam from "./views/gradcam.js";
import * as patterns from "./views/patterns.js";

export const VIEWS = [filters, activations, dead, gradcam, patterns, embedding];

const SNIPPET = `from tb_cnnviz.callbacks import CNNVizCallback

viz = CNNVizCallback(model, log_dir="runs/exp1", probe=(images, labels))
for step, (x, y) in enumerate(loader):
    ...                      # forward, backward, optimizer.step()
    viz.on_step_end(step)
viz.close()`;

const STORE_KEY = "tb-cnnviz.shell";

function loadPrefs() {
  try {
    return JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}") || {};
  } catch (_) {
    return {};
  }
}

class Shell {
  constructor(root) {
    const prefs = loadPrefs();
    this.root = root;
    this.runs = [];
    this.viewId = VIEWS.some((v) => v.id === prefs.view) ? prefs.view : VIEWS[0].id;
    this.runA = prefs.runA || null;
    this.runB = prefs.runB || "";
    this.view = null;
    this.pending = 0;
    this.reloads = 0;
    this.intent = null;

    this.tabs = h("nav", { class: "tabs", role: "tablist" });
    this.runSelect = select([], null, (v) => this.chooseRuns(v, this.runB), {
      class: "run-a",
      "aria-label": "run",
    });
    this.compareSelect = select([], null, (v) => this.chooseRuns(this.runA, v), {
      class: "run-b",
      "aria-label": "compare with run",
    });
    this.status = h("span", { class: "status", "aria-live": "polite" });
    this.reloadButton = h("button", {
      type: "button",
      class: "reload",
      title: "Reload the data (also happens when TensorBoard reloads)",
      text: "⟳ Reload",
      on: { click: () => this.reload() },
    });
    this.header = h(
      "header",
      { class: "shell-header" },
      h("div", { class: "brand", text: "CNN Viz" }),
      this.tabs,
      (this.pickers = h(
        "div",
        { class: "run-pickers", hidden: true },
        field("Run", this.runSelect),
        field("Compare with", this.compareSelect),
      )),
      this.status,
      this.reloadButton,
    );
    this.body = h("main", { class: "view-root" });
    setChildren(root, this.header, this.body);
  }

  savePrefs() {
    try {
      window.localStorage.setItem(
        STORE_KEY,
        JSON.stringify({ view: this.viewId, runA: this.runA, runB: this.runB }),
      );
    } catch (_) {
      /* storage blocked: fine */
    }
  }

  /** Run entries (from api/runs/list) currently selected: one, or two for a comparison. */
  selectedRuns() {
    const byName = new Map(this.runs.map((r) => [r.name, r]));
    return [this.runA, this.runB]
      .filter((name, i) => name && byName.has(name) && (i === 0 || name !== this.runA))
      .map((name) => byName.get(name));
  }

  /** Count an async task in the header's loading indicator. */
  async busy(promise) {
    this.pending++;
    this.showStatus();
    try {
      return await promise;
    } finally {
      this.pending--;
      this.showStatus();
    }
  }

  showStatus() {
    this.root.dataset.loading = this.pending > 0 ? "true" : "false";
    if (this.pending > 0)
      setChildren(this.status, h("span", { class: "spinner small", "aria-hidden": "true" }), " Loading…");
    else
      setChildren(
        this.status,
        this.runs.length ? `${this.runs.length} run${this.runs.length === 1 ? "" : "s"}` : "",
      );
  }

  renderTabs() {
    setChildren(
      this.tabs,
      VIEWS.map((v) =>
        h("button", {
          type: "button",
          role: "tab",
          class: v.id === this.viewId ? "tab on" : "tab",
          "aria-selected": String(v.id === this.viewId),
          dataset: { view: v.id },
          text: v.title,
          on: { click: () => this.chooseView(v.id) },
        }),
      ),
    );
  }

  renderRunPickers() {
    const names = this.runs.map((r) => r.name);
    if (!names.includes(this.runA)) this.runA = names[0] || null;
    if (this.runB && (!names.includes(this.runB) || this.runB === this.runA)) this.runB = "";
    fillSelect(this.runSelect, names, this.runA);
    fillSelect(
      this.compareSelect,
      [{ value: "", label: "— none —" }, ...names.filter((n) => n !== this.runA)],
      this.runB,
    );
    this.compareSelect.disabled = names.length < 2;
    this.pickers.hidden = names.length === 0;
  }

  chooseRuns(a, b) {
    this.runA = a;
    this.runB = b && b !== a ? b : "";
    this.renderRunPickers();
    this.savePrefs();
    this.updateView();
  }

  /** Switch to view `id` with something selected there (e.g. {layer, filter}); see takeIntent. */
  open(id, intent = {}) {
    if (!VIEWS.some((v) => v.id === id)) return;
    this.intent = { ...intent, view: id };
    if (id === this.viewId && this.view) this.updateView();
    else this.chooseView(id);
  }

  /** The pending intent for view `id` (once), or null. */
  takeIntent(id) {
    const intent = this.intent;
    if (!intent || intent.view !== id) return null;
    this.intent = null;
    return intent;
  }

  chooseView(id) {
    if (id === this.viewId && this.view) return;
    this.viewId = id;
    this.savePrefs();
    this.renderTabs();
    this.mountView();
  }

  mountView() {
    if (this.view) this.view.destroy();
    this.view = null;
    if (!this.runs.length) return this.renderEmpty();
    const module = VIEWS.find((v) => v.id === this.viewId);
    const root = h("section", { class: `view view-${module.id}`, dataset: { view: module.id } });
    setChildren(this.body, root);
    this.view = module.create(root, this);
    this.updateView();
  }

  updateView() {
    this.root.dataset.runs = String(this.selectedRuns().length);
    if (this.view) this.busy(Promise.resolve(this.view.update())).catch((e) => this.showError(e));
  }

  renderEmpty() {
    setChildren(
      this.body,
      message(
        "empty",
        "No CNN Viz data yet — add CNNVizCallback to your loop",
        h("p", {
          text: "Nothing in this logdir was written by tb-cnnviz (or TensorBoard has not loaded it yet). Three lines in your training loop log kernels, activation maps and dead filters:",
        }),
        h("pre", { class: "snippet", text: SNIPPET }),
        h("p", { text: "Then reload (⟳ above, or TensorBoard's reload)." }),
      ),
    );
  }

  showError(error) {
    console.warn("tb-cnnviz:", error);
    setChildren(
      this.body,
      message(
        "error",
        "Could not load CNN Viz data",
        h("p", { text: String(error && error.message ? error.message : error) }),
      ),
    );
  }

  async load() {
    const listing = await this.busy(seriesJSON("api/runs/list", {}));
    this.runs = listing.runs || [];
    this.renderTabs();
    this.renderRunPickers();
    this.showStatus();
    this.savePrefs();
  }

  async start() {
    setChildren(this.body, spinner("Loading runs…"));
    try {
      await this.load();
    } catch (error) {
      return this.showError(error);
    }
    this.mountView();
  }

  /** Re-read everything that grows while training runs (TensorBoard's reload, or ⟳). */
  async reload() {
    this.reloads++;
    this.root.dataset.reloads = String(this.reloads);
    reloadSeries();
    const hadRuns = this.runs.length > 0;
    try {
      await this.load();
    } catch (error) {
      return this.showError(error);
    }
    if (!this.view || !hadRuns) this.mountView();
    else this.updateView();
  }
}

function addStylesheet() {
  if (document.querySelector("link[data-cnnviz]")) return;
  document.head.append(
    h("link", {
      rel: "stylesheet",
      href: new URL("./style.css", import.meta.url).href,
      dataset: { cnnviz: "" },
    }),
  );
}

/** Entry point called by TensorBoard's plugin frame. */
export async function render() {
  addStylesheet();
  document.title = "CNN Viz";
  const meta =
    document.querySelector("meta[name=color-scheme]") ||
    document.head.appendChild(h("meta", { name: "color-scheme" }));
  meta.setAttribute("content", "light dark");
  const root = h("div", { class: "cnnviz", id: "cnnviz" });
  document.body.append(root);
  const shell = new Shell(root);
  window.cnnviz = shell; // for debugging from the console (and the end-to-end test)
  let reloadTimer = null;
  const host = connectToTensorBoard(() => {
    clearTimeout(reloadTimer); // TensorBoard can fire several reloads in a burst
    reloadTimer = setTimeout(() => shell.reload(), 250);
  });
  root.dataset.host = host.connected ? "tensorboard" : "standalone";
  const redraw = () => shell.view && shell.view.redraw && shell.view.redraw();
  window.addEventListener("cnnviz-theme", redraw);
  if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
  await shell.start();
}
