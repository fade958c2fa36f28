// CNN Viz: the TensorBoard plugin frontend (entry point; TensorBoard calls `render()` once).
//
// The shell owns the run selection (one run, or up to MAX_RUNS side by side, and how they line up:
// by step, by fraction of training, by epoch), the tabs, the reload wiring
// (TensorBoard's reload event, ⟳, and polling api/runs/version while visible: live.js), the
// state of the tab in the URL (url_state.js, host.js: a link reproduces what one sees), the
// notice when a selected run is gone, and the empty state. Which views exist, their titles and
// their empty-state hints come from the table of kinds that api/runs/list sends (`table.views`,
// from tb_cnnviz/kinds.py); each view's code is a folder ./views/<name>/, imported when the table
// names it, built on layer_view.js, whose index.js exports
//   create(root, shell) -> {update(), destroy(), redraw(), urlState(), steps()}
// so a new view needs no edit here. A view links to another with shell.open(name, {layer, filter,
// ...}); the target picks the intent up with shell.takeIntent(name) when it updates (a link's
// layer, step, filter and image arrive the same way).
import { getJSON, reloadSeries, seriesJSON } from "./api.js";
import { field, fillSelect, h, message, select, setChildren, spinner } from "./dom.js";
import { connectToTensorBoard, linkUrl, readLinkState, writeLinkState } from "./host.js";
import { newSteps, pollDelay, updatedNote } from "./live.js";
import { logsEpochs } from "./steps.js";
import { MAX_RUNS, decodeState, encodeState } from "./url_state.js";
const VIEW_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * The table's views that have a module, in the table's order; a row without a module or a
 * module without a row is reported in the console and left out.
 */
export function matchViews(rows, modules) {
  const shown = [];
  for (const row of rows) {
    if (modules[row.name]) shown.push({ ...row, module: modules[row.name] });
    else
      console.warn(
        `tb-cnnviz: the table lists view ${JSON.stringify(row.name)} but the frontend has no module for it`,
      );
  }
  for (const name of Object.keys(modules))
    if (!rows.some((row) => row.name === name))
      console.warn(
        `tb-cnnviz: view module ${JSON.stringify(name)} has no row in the table of kinds; not shown`,
      );
  return shown;
}

/** The module of each view the table names, imported from ./views/<name>/index.js (a failed import is skipped). */
async function importViews(rows) {
  const modules = {};
  await Promise.all(
    rows
      .filter((row) => VIEW_NAME.test(row.name))
      .map(async (row) => {
        try {
          modules[row.name] = await import(`./views/${row.name}/index.js`);
        } catch (error) {
          console.warn(`tb-cnnviz: view ${JSON.stringify(row.name)} could not be loaded: ${error}`);
        }
      }),
  );
  return modules;
}

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
    // A link's state (URL fragment) wins over the preferences of the last visit.
    this.linked = decodeState(readLinkState());
    const fromLink = Boolean(this.linked.view || this.linked.run);
    this.root = root;
    this.runs = [];
    this.everSeen = new Set(); // runs listed since the page opened (to tell "deleted" from "not here")
    this.views = []; // rows of the table (name, title, hint, ...) with their module
    this.wantedView = this.linked.view || prefs.view || null;
    this.viewId = null;
    this.runA = (fromLink ? this.linked.run : prefs.runA) || null;
    // The runs compared with runA ("" for an empty select); prefs of older versions kept one, runB.
    const compares = fromLink ? this.linked.compare : prefs.compares || (prefs.runB ? [prefs.runB] : []);
    this.compares = Array.from({ length: MAX_RUNS - 1 }, (_, i) => (compares && compares[i]) || "");
    this.syncMode = this.linked.sync || prefs.sync || "step";
    this.version = null; // runs/list's version of the data shown
    this.polls = 0;
    this.failures = 0;
    this.hiddenSince = null;
    this.pollTimer = null;
    this.linkTimer = null;
    this.linkPlace = null;
    this.reloading = false;
    this.view = null;
    this.pending = 0;
    this.reloads = 0;
    this.intent = null;

    this.tabs = h("nav", { class: "tabs", role: "tablist" });
    this.runSelect = select([], null, (v) => this.chooseRuns(v, this.compares), {
      class: "run-a",
      "aria-label": "run",
    });
    // One select per compared run ("run-b", "run-c", "run-d"); the next one shows once this one is set.
    this.compareSelects = this.compares.map((_, i) =>
      select(
        [],
        null,
        (v) =>
          this.chooseRuns(
            this.runA,
            this.compares.map((old, j) => (j === i ? v : old)),
          ),
        {
          class: `run-compare run-${"bcd"[i]}`,
          "aria-label": i === 0 ? "compare with run" : `compare with run ${i + 1}`,
        },
      ),
    );
    this.compareFields = this.compareSelects.map((el, i) => field(i === 0 ? "Compare with" : "and", el));
    this.syncSelect = select(
      [
        { value: "step", label: "step" },
        { value: "fraction", label: "fraction of training" },
        { value: "epoch", label: "epoch" },
      ],
      this.syncMode,
      (v) => this.chooseSync(v),
      { class: "sync-mode", "aria-label": "line the compared runs up by" },
    );
    this.syncField = field("Sync by", this.syncSelect);
    this.status = h("span", { class: "status", "aria-live": "polite" });
    this.reloadButton = h("button", {
      type: "button",
      class: "reload",
      title: "Reload the data (also happens when TensorBoard reloads)",
      text: "⟳ Reload",
      on: { click: () => this.reload() },
    });
    this.liveNote = h("span", {
      class: "live-note",
      "aria-live": "polite",
      title: "This tab asks TensorBoard for new data every few seconds while it is visible",
      style: { color: "var(--muted)", whiteSpace: "nowrap" },
    });
    this.linkButton = h("button", {
      type: "button",
      class: "reload copy-link",
      text: "Copy link",
      on: { click: () => this.copyLink() },
    });
    this.linkNote = h("span", { class: "link-note", style: { color: "var(--muted)" } });
    this.header = h(
      "header",
      { class: "shell-header" },
      h("div", { class: "brand", text: "CNN Viz" }),
      this.tabs,
      (this.pickers = h(
        "div",
        { class: "run-pickers", hidden: true },
        field("Run", this.runSelect),
        ...this.compareFields,
        this.syncField,
      )),
      this.status,
      this.liveNote,
      this.reloadButton,
      this.linkButton,
      this.linkNote,
    );
    this.notice = h("div", {
      class: "message note run-notice",
      role: "status",
      hidden: true,
      style: { margin: "8px 16px", maxWidth: "none", padding: "8px 12px" },
    });
    this.body = h("main", { class: "view-root" });
    setChildren(root, this.header, this.notice, this.body);
    // Any change made in the tab (a select, the slider, a click on a filter) may change the link.
    for (const type of ["change", "input", "click", "keyup"])
      root.addEventListener(type, () => this.writeLink());
  }

  savePrefs() {
    try {
      window.localStorage.setItem(
        STORE_KEY,
        JSON.stringify({
          view: this.viewId || this.wantedView,
          runA: this.runA,
          compares: this.compares.filter(Boolean),
          sync: this.syncMode,
        }),
      );
    } catch (_) {
      /* storage blocked: fine */
    }
  }

  /** Run entries (from api/runs/list) currently selected: one, or up to MAX_RUNS for a comparison. */
  selectedRuns() {
    const byName = new Map(this.runs.map((r) => [r.name, r]));
    const names = [this.runA, ...this.compares].filter((name) => name && byName.has(name));
    return [...new Set(names)].map((name) => byName.get(name));
  }

  /** How the compared runs line up ("step", "fraction", "epoch"; "step" when epochs are asked for but not logged). */
  get sync() {
    const runs = this.selectedRuns();
    if (runs.length < 2) return "step";
    return this.syncMode === "epoch" && !logsEpochs(runs) ? "step" : this.syncMode;
  }

  chooseSync(mode) {
    this.syncMode = mode;
    this.savePrefs();
    this.updateView();
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
      this.views.map((v) =>
        h("button", {
          type: "button",
          role: "tab",
          class: v.name === this.viewId ? "tab on" : "tab",
          "aria-selected": String(v.name === this.viewId),
          dataset: { view: v.name },
          text: v.title,
          on: { click: () => this.chooseView(v.name) },
        }),
      ),
    );
  }

  renderRunPickers() {
    const names = this.runs.map((r) => r.name);
    const gone = (name) => Boolean(name) && !names.includes(name);
    const missing = { run: gone(this.runA) ? this.runA : null, compare: this.compares.filter(gone) };
    if (!names.includes(this.runA)) this.runA = names[0] || null;
    // Compared runs: listed, not runA, each once, packed to the left (an emptied select closes its gap).
    const kept = [];
    for (const name of this.compares)
      if (name && names.includes(name) && name !== this.runA && !kept.includes(name)) kept.push(name);
    this.compares = this.compares.map((_, i) => kept[i] || "");
    if ((missing.run || missing.compare.length) && names.length) this.showMissing(missing);
    fillSelect(this.runSelect, names, this.runA);
    this.compareSelects.forEach((el, i) => {
      const others = this.compares.filter((n, j) => n && j !== i);
      fillSelect(
        el,
        [{ value: "", label: "— none —" }, ...names.filter((n) => n !== this.runA && !others.includes(n))],
        this.compares[i],
      );
      el.disabled = names.length < 2;
      // The next select shows once this one is set (and while there is a run left to add).
      this.compareFields[i].hidden = i > 0 && (!this.compares[i - 1] || names.length < i + 2);
    });
    const runs = this.selectedRuns();
    this.syncField.hidden = runs.length < 2;
    const epochs = logsEpochs(runs);
    const epochOption = this.syncSelect.querySelector("option[value=epoch]");
    epochOption.disabled = !epochs;
    const why = epochs
      ? "Line the runs up by the same step, the same fraction of each run's training (step / its last step), or the same epoch"
      : "By epoch needs every compared run to log its epochs (viz.on_epoch_end(step) at the end of each epoch; Lightning's callback does it); a run here logs steps only, so that choice is off";
    this.syncSelect.title = why;
    epochOption.title = why;
    this.syncSelect.value = this.sync;
    this.syncSelect.dataset.epochs = String(epochs);
    this.pickers.hidden = names.length === 0;
  }

  /**
   * Say which selected runs are gone (deleted from disk, or a link's run not in this logdir) and what
   * is shown instead; `missing` is {run, compare}, each a run name or null.
   */
  showMissing(missing) {
    const quoted = (name) => `“${name}”`;
    const gone = (name) =>
      this.everSeen.has(name)
        ? `Run ${quoted(name)} is no longer in the logdir (deleted from disk?).`
        : `Run ${quoted(name)} is not in this logdir.`;
    const lines = [];
    if (missing.run) lines.push(gone(missing.run), `Showing ${quoted(this.runA)} instead.`);
    for (const name of missing.compare) lines.push(gone(name), "The comparison with it is closed.");
    setChildren(
      this.notice,
      h("span", { class: "notice-text", text: lines.join(" ") }),
      " ",
      h("button", {
        type: "button",
        class: "reload",
        text: "Dismiss",
        on: { click: () => this.hideNotice() },
      }),
    );
    this.notice.dataset.runs = JSON.stringify([missing.run, ...missing.compare].filter(Boolean));
    this.notice.hidden = false;
  }

  hideNotice() {
    this.notice.hidden = true;
    setChildren(this.notice);
  }

  chooseRuns(a, compares) {
    this.hideNotice();
    this.runA = a;
    this.compares = compares;
    this.renderRunPickers();
    this.savePrefs();
    this.updateView();
  }

  /** The empty-state hint of view `name` (what to pass to CNNVizCallback), from the table. */
  hint(name) {
    const row = this.views.find((v) => v.name === name);
    return row ? row.hint : "";
  }

  /** Switch to view `id` with something selected there (e.g. {layer, filter}); see takeIntent. */
  open(id, intent = {}) {
    if (!this.views.some((v) => v.name === id)) return;
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
    const row = this.views.find((v) => v.name === this.viewId);
    if (!row)
      return this.showError(new Error("the plugin's table of views lists no view this frontend knows"));
    const root = h("section", { class: `view view-${row.name}`, dataset: { view: row.name } });
    setChildren(this.body, root);
    this.view = row.module.create(root, this);
    return this.updateView();
  }

  updateView() {
    this.root.dataset.runs = String(this.selectedRuns().length);
    if (!this.view) return Promise.resolve();
    return this.busy(Promise.resolve(this.view.update()))
      .then(() => this.writeLink())
      .catch((e) => this.showError(e));
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
    this.version = listing.version ?? null;
    if (!listing.table || !Array.isArray(listing.table.views))
      throw new Error("api/runs/list sent no table of views (a tb-cnnviz backend older than this frontend?)");
    this.views = matchViews(listing.table.views, await importViews(listing.table.views));
    const wanted = this.viewId || this.wantedView;
    this.viewId = this.views.some((v) => v.name === wanted) ? wanted : (this.views[0]?.name ?? null);
    this.renderTabs();
    this.renderRunPickers();
    for (const run of this.runs) this.everSeen.add(run.name);
    this.showStatus();
    this.savePrefs();
  }

  async start() {
    setChildren(this.body, spinner("Loading runs…"));
    this.startPolling();
    try {
      await this.load();
    } catch (error) {
      return this.showError(error);
    }
    // What a link asks for beyond view and runs: the layer, step, filter and image (an intent the view takes).
    const { layer, layers, step, filter, image } = this.linked;
    if (this.viewId && (layer || layers || step !== undefined || filter !== undefined || image !== undefined))
      this.intent = { view: this.viewId, layer, layers, step, filter, image };
    await this.mountView();
  }

  /**
   * Re-read everything that grows while training runs (TensorBoard's reload, ⟳, or a poll that saw a
   * new version); the header then says when, and how many steps the view's slider gained. Resolves
   * to whether the listing loaded.
   */
  async reload() {
    this.reloading = true;
    try {
      return await this.reloadNow();
    } finally {
      this.reloading = false;
    }
  }

  async reloadNow() {
    this.reloads++;
    this.root.dataset.reloads = String(this.reloads);
    reloadSeries();
    const hadRuns = this.runs.length > 0;
    const before = this.view && this.view.steps ? [...this.view.steps()] : [];
    try {
      await this.load();
    } catch (error) {
      this.showError(error);
      return false;
    }
    if (!this.view || !hadRuns) await this.mountView();
    else await this.updateView();
    const added = hadRuns && this.view && this.view.steps ? newSteps(before, this.view.steps()) : 0;
    this.liveNote.textContent = updatedNote(new Date(), added);
    this.liveNote.dataset.newSteps = String(added);
    return true;
  }

  // ---------------------------------------------------------------- polling (live.js)
  /** Whether the tab is seen: the page visible and TensorBoard showing this plugin (it hides others at 0 px). */
  visible() {
    return document.visibilityState === "visible" && window.innerHeight > 0;
  }

  startPolling() {
    const changed = () => {
      const visible = this.visible();
      if (visible === (this.hiddenSince === null)) return;
      this.hiddenSince = visible ? null : Date.now();
      this.schedulePoll(visible ? 0 : undefined);
      if (visible) this.writeLink(); // back on the CNN Viz tab: TensorBoard's address shows it again
    };
    document.addEventListener("visibilitychange", changed);
    window.addEventListener("resize", changed);
    if (!this.visible()) this.hiddenSince = Date.now();
    this.schedulePoll();
  }

  schedulePoll(delay) {
    clearTimeout(this.pollTimer);
    const visible = this.visible();
    const hiddenMs = visible || this.hiddenSince === null ? 0 : Date.now() - this.hiddenSince;
    const wait = delay ?? pollDelay({ visible, hiddenMs, failures: this.failures });
    this.root.dataset.poll = wait === null ? "stopped" : String(wait);
    if (wait !== null) this.pollTimer = setTimeout(() => this.poll(), wait);
  }

  /** Ask api/runs/version whether the data changed; reload when it did (not while something loads). */
  async poll() {
    try {
      const answer = await getJSON("api/runs/version", {});
      this.polls++;
      this.root.dataset.polls = String(this.polls);
      // A new version, or none yet because the first listing failed (TensorBoard was starting);
      // a reload that fails counts as a failed poll (the next ones wait longer).
      const stale = answer.version !== this.version && this.pending === 0 && !this.reloading;
      this.failures = !stale || (await this.reload()) ? 0 : this.failures + 1;
    } catch (_) {
      this.failures++; // TensorBoard restarting: poll again later, less often
    } finally {
      this.schedulePoll();
    }
  }

  // ---------------------------------------------------------------- the link (url_state.js, host.js)
  /** What a link keeps: the view, the runs and what the view reports (layer, step, filter, image). */
  linkState() {
    const own = this.view && this.view.urlState ? this.view.urlState() : {};
    const compared = this.selectedRuns().length > 1;
    return {
      view: this.viewId,
      run: this.runA,
      compare: this.compares.filter(Boolean),
      sync: compared && this.sync !== "step" ? this.sync : null,
      ...own,
    };
  }

  /** Write the state to the URL fragment(s) soon (once per burst of changes). */
  writeLink() {
    clearTimeout(this.linkTimer);
    this.linkTimer = setTimeout(() => this.writeLinkNow(), 100);
  }

  writeLinkNow() {
    clearTimeout(this.linkTimer);
    if (!this.viewId) return;
    this.linkPlace = writeLinkState(encodeState(this.linkState()));
    const what =
      "opened, it shows this view, run(s), layer and step (and the filter or probe image selected)";
    this.linkButton.title = {
      tensorboard: `Copy TensorBoard's address: ${what}. The address bar holds it too.`,
      standalone: `Copy this page's address: ${what}. The address bar holds it too.`,
      frame: `Copy the address of the CNN Viz page on its own (this frame cannot set the outer page's address): ${what}.`,
    }[this.linkPlace];
    this.linkButton.dataset.place = this.linkPlace;
  }

  async copyLink() {
    this.writeLinkNow();
    const url = linkUrl();
    this.linkButton.dataset.url = url;
    try {
      await navigator.clipboard.writeText(url);
      setChildren(this.linkNote, "link copied");
      setTimeout(() => setChildren(this.linkNote), 4000);
    } catch (_) {
      // No clipboard (permissions, an old browser): show the link to copy by hand.
      const input = h("input", { type: "text", readonly: true, value: url, class: "link-text" });
      setChildren(this.linkNote, "copy: ", input);
      input.select();
    }
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
  window.addEventListener("cnnviz-theme", redraw); // host.js: TensorBoard's or the system's theme changed
  await shell.start();
}
