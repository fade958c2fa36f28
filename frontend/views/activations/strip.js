// The Activations view's strip of probe images: one thumbnail button per probe image (its label below, the
// chosen one marked), rebuilt only when the probe images change.
import { h, setChildren } from "../../dom.js";
import { colors } from "../../draw.js";
import { labelText } from "../../format.js";
import { picture } from "../top_images/data.js";

/** A 40 px thumbnail of probe image `i` (the grid colour while it loads or when it was not logged). */
function thumbnail(probe, i) {
  const thumb = h("canvas", { class: "thumb", width: "40", height: "40" });
  const ctx = thumb.getContext("2d");
  if (probe && probe.images[i]) {
    picture(probe.images[i])
      .then((b) => {
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(b, 0, 0, 40, 40);
      })
      .catch(() => {});
  } else {
    ctx.fillStyle = colors().grid;
    ctx.fillRect(0, 0, 40, 40);
  }
  return thumb;
}

/**
 * The strip; `choose(i)` when probe image i is clicked. Returns {el, draw(data, image)}: `draw` shows the probe
 * images of an api/activations/step answer (`data.probe`, `data.images`) with image `image` marked.
 */
export function probeStrip(choose) {
  const strip = h("div", { class: "probe-strip", role: "listbox", "aria-label": "probe image" });
  const el = h("div", { class: "strip-box" }, h("div", { class: "field-label", text: "Probe image" }), strip);
  let key = "";
  let selected = 0;

  function mark() {
    for (const item of strip.children) {
      const on = Number(item.dataset.index) === selected;
      item.classList.toggle("on", on);
      item.setAttribute("aria-selected", String(on));
    }
  }

  function item(probe, i) {
    const click = () => {
      selected = i;
      mark();
      choose(i);
    };
    return h(
      "button",
      {
        type: "button",
        class: "strip-item",
        role: "option",
        dataset: { index: String(i) },
        title: labelText(probe, i) || `probe #${i}`,
        on: { click },
      },
      thumbnail(probe, i),
      h("span", { text: labelText(probe, i).split(" (")[0] || `#${i}` }),
    );
  }

  function draw(data, image) {
    selected = image;
    const probe = data.probe;
    const count = data.images.length;
    const drawn = `${probe ? probe.images.join("|") : ""}#${count}`;
    if (drawn !== key) {
      key = drawn;
      setChildren(
        strip,
        Array.from({ length: count }, (_, i) => item(probe, i)),
      );
    }
    mark();
  }

  return { el, draw };
}
