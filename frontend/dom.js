// Small DOM helpers. Everything a user or a logdir controls (run names, layer names,
// labels, error messages) goes in as text: `h()` never sets innerHTML, so a run named
// `<img src=x onerror=alert(1)>` shows literally.

/** Create an element: h("div", {class: "x", dataset: {k: "v"}, on: {click}}, child, "text", ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (/html/i.test(key) || /^on./i.test(key))
      throw new Error(`h(): refusing attribute ${key}; use text or on: {...}`);
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else if (key === "style") Object.assign(el.style, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A <select> whose options are [{value, label}] or strings; keeps `selected` if present. */
export function select(options, selected, onChange, attrs = {}) {
  const el = h("select", attrs);
  fillSelect(el, options, selected);
  if (onChange) el.addEventListener("change", () => onChange(el.value));
  return el;
}

export function fillSelect(el, options, selected) {
  el.replaceChildren(
    ...options.map((o) => {
      const { value, label } = typeof o === "string" ? { value: o, label: o } : o;
      return h("option", { value, text: label });
    }),
  );
  const values = options.map((o) => (typeof o === "string" ? o : o.value));
  if (values.includes(selected)) el.value = selected;
  return el;
}

/** A labelled control: <label><span>text</span> control</label>. */
export function field(label, control, attrs = {}) {
  return h("label", { class: "field", ...attrs }, h("span", { class: "field-label", text: label }), control);
}

/** Segmented toggle (radio-like buttons). */
export function toggle(options, selected, onChange, attrs = {}) {
  const el = h("div", { role: "radiogroup", ...attrs, class: `toggle ${attrs.class || ""}`.trim() });
  const buttons = options.map(({ value, label }) =>
    h("button", {
      type: "button",
      role: "radio",
      class: value === selected ? "on" : "",
      "aria-checked": String(value === selected),
      dataset: { value },
      text: label,
      on: {
        click: () => {
          for (const b of buttons) {
            b.classList.toggle("on", b === buttonFor(value));
            b.setAttribute("aria-checked", String(b.dataset.value === value));
          }
          onChange(value);
        },
      },
    }),
  );
  const buttonFor = (value) => buttons.find((b) => b.dataset.value === value);
  el.append(...buttons);
  return el;
}

/**
 * A segmented toggle bound to `state[key]`: `labels` maps each value (not a number-like string: object keys
 * keep their order only then) to its button's text; a click stores the value in `state[key]`, then calls
 * `then(value)` (e.g. the view's redraw).
 */
export function stateToggle(state, key, labels, then, attrs = {}) {
  const options = Object.entries(labels).map(([value, label]) => ({ value, label }));
  return toggle(
    options,
    state[key],
    (value) => {
      state[key] = value;
      then(value);
    },
    attrs,
  );
}

/** Spinner shown while something loads. */
export function spinner(text = "Loading…") {
  return h(
    "div",
    { class: "loading", role: "status" },
    h("span", { class: "spinner", "aria-hidden": "true" }),
    h("span", { text }),
  );
}

/** A message box: kind = "empty" | "error" | "note". */
export function message(kind, title, ...body) {
  return h("div", { class: `message ${kind}` }, h("div", { class: "message-title", text: title }), ...body);
}

/** Where a pointer event falls in `el`: [x, y] in CSS px, or in a canvas's own pixels with `pixels`. */
export function eventPoint(event, el, pixels = false) {
  const rect = el.getBoundingClientRect();
  const x = event.clientX - rect.left;
  const y = event.clientY - rect.top;
  return pixels ? [(x * el.width) / rect.width, (y * el.height) / rect.height] : [x, y];
}
