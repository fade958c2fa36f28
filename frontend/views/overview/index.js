// Overview (the first tab): one page per run, built from what the other views' data already holds
// (api/overview/run): the findings the plugin computed (tb_cnnviz/plugin/findings.py, docs/findings.md),
// each with a link that opens the view showing its evidence; two layers × steps maps, the dead fraction
// (the Dead filters view's map) and the spread of the filters' activation rates; the first layer's
// smoothness, separability, Grad-CAM faithfulness and the probe images' accuracy as small charts. Two
// runs side by side when compared. No layer select or step slider, so it is not built on layer_view.js;
// it keeps its stale-answer guard (a token) and its panels (layer_view.js's basePanel) itself.
import { h, message, setChildren } from "../../dom.js";
import { runNames } from "../../format.js";
import { basePanel } from "../../layer_view.js";
import { setLoading } from "../../widgets.js";
import { SEVERITY_LABELS, findingLink, overviewData, overviewSteps } from "./data.js";
import {
  deadMap,
  faithfulnessChart,
  hintNote,
  probeAccuracyChart,
  section,
  separabilityChart,
  smoothnessChart,
  spreadMap,
} from "./draw.js";

const PARTS = [
  { name: "dead", title: "Dead fraction per layer (rows) and logged step (columns)", draw: deadMap },
  {
    name: "rate_spread",
    title: "Spread of the filters' activation rates per layer and step",
    draw: spreadMap,
  },
  { name: "smoothness", title: "First layer's smoothness over training", draw: smoothnessChart },
  { name: "separability", title: "Separability: deepest layer's probe accuracy", draw: separabilityChart },
  { name: "faithfulness", title: "Grad-CAM faithfulness: deletion gap", draw: faithfulnessChart },
  { name: "probe_accuracy", title: "Probe images' accuracy", draw: probeAccuracyChart },
];
const MAPS = ["dead", "rate_spread"]; // the first parts: full width; the charts after them two to a row

export function create(root, shell) {
  let token = 0;
  let panels = [];
  const row = h("div", { class: "panels overview-panels" });
  setChildren(root, row);

  const open = (view, intent) => shell.open(view, intent);
  // CSS px a panel has inside; the small charts go two to a row when that is wide enough.
  const room = () => Math.max(260, Math.floor((root.clientWidth || 860) / Math.max(panels.length, 1) - 48));
  const chartWidth = () =>
    room() >= 820 ? Math.min(520, Math.floor(room() / 2) - 24) : Math.min(620, room());

  function findingsList(p) {
    const findings = p.data.findings || [];
    if (!findings.length)
      return h("p", {
        class: "panel-note overview-no-findings",
        text: "No findings: no rule of docs/findings.md triggered on what this run logged.",
      });
    const names = shell.views.map((v) => v.name);
    return h(
      "ol",
      { class: "overview-findings", style: { margin: "4px 0", paddingLeft: "20px" } },
      findings.map((f) => {
        const link = findingLink(f, names);
        const title = link ? (shell.views.find((v) => v.name === link.view) || {}).title : null;
        return h(
          "li",
          { class: `finding finding-${f.severity}`, dataset: { rule: f.rule }, style: { margin: "4px 0" } },
          h("span", {
            class: "finding-severity",
            text: `${SEVERITY_LABELS[f.severity] || f.severity}: `,
            style: { color: f.severity === "info" ? "var(--muted)" : "var(--dead)", fontWeight: "600" },
          }),
          h("span", { class: "finding-text", text: f.text }),
          link
            ? h("button", {
                type: "button",
                class: "link-button finding-link",
                dataset: { view: link.view },
                text: `Open in ${title}`,
                style: { marginLeft: "6px" },
                on: { click: () => open(link.view, link.intent) },
              })
            : null,
        );
      }),
    );
  }

  function draw(p) {
    if (!p.data) return;
    const findings = section("findings", "Findings");
    setChildren(findings.body, findingsList(p));
    const parts = PARTS.map(({ name, title, draw: drawPart }) => {
      const part = section(name, title);
      const data = p.data[name];
      const map = MAPS.includes(name);
      part.el.hidden = name === "rate_spread" && !data && !p.data.dead; // the dead part's hint says it
      const width = map ? Math.min(900, room()) : chartWidth();
      if (data) drawPart(part.body, data, width, open);
      else setChildren(part.body, hintNote((p.data.hints || {})[name] || ""));
      if (!map) part.el.style.width = `${chartWidth()}px`;
      return part.el;
    });
    const charts = h(
      "div",
      { class: "overview-charts", style: { display: "flex", flexWrap: "wrap", columnGap: "32px" } },
      parts.slice(MAPS.length),
    );
    setChildren(p.figure, findings.el, parts.slice(0, MAPS.length), charts);
    p.el.dataset.findings = String((p.data.findings || []).length);
  }

  function drawAll() {
    for (const p of panels) draw(p);
  }

  async function update() {
    const my = ++token;
    shell.takeIntent("overview"); // a link to the Overview carries nothing it uses
    const runs = shell.selectedRuns();
    if (!runs.length) {
      panels = [];
      return setChildren(row, message("empty", `No runs to summarise in ${runNames(runs)}`));
    }
    panels = runs.map((run) => {
      const p = basePanel(run, null);
      p.figure = h("div", { class: "figure overview-figure" });
      p.el.append(p.figure);
      return p;
    });
    setChildren(
      row,
      panels.map((p) => p.el),
    );
    await Promise.all(
      panels.map(async (p) => {
        setLoading(p.figure, true);
        try {
          const data = await overviewData(p.run);
          if (my === token) p.data = data;
        } catch (error) {
          if (my === token) p.note.textContent = `Could not load: ${error.message}`;
        } finally {
          setLoading(p.figure, false);
        }
      }),
    );
    if (my === token) drawAll();
  }

  return {
    update,
    redraw: drawAll,
    urlState: () => ({}),
    steps: () => [...new Set(panels.flatMap((p) => overviewSteps(p.data)))].sort((a, b) => a - b),
    destroy() {
      token++;
    },
  };
}
