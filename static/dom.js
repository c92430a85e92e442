// Small DOM and formatting helpers shared by the views.

import { STAGE_NAMES } from "./stages.js";

// h("p", {class: "x", onclick: fn}, "text", child): attributes, event handlers, children.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    // Through the CSSOM, not a style attribute: the page's CSP allows no inline styles.
    else if (name === "style") node.style.cssText = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function stageName(stage) {
  return STAGE_NAMES[stage] || stage;
}

// 75.3 -> "1:15", 3725 -> "1:02:05"
export function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function megabytes(bytes) {
  const mb = bytes / 1e6;
  return mb >= 10 ? mb.toFixed(0) : mb.toFixed(1);
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// The plain message, and the code and technical detail in an expandable part.
export function errorBlock(error, { role = null } = {}) {
  const rows = [["Code", error.code]];
  if (error.stage) rows.push(["Stage", stageName(error.stage)]);
  if (error.detail) rows.push(["Detail", error.detail]);
  return h(
    "div",
    { class: "error", role },
    h("p", { class: "error-message" }, error.message || "Something went wrong."),
    h(
      "details",
      {},
      h("summary", {}, "Technical details"),
      h(
        "dl",
        {},
        rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, h("code", {}, value))]),
      ),
    ),
  );
}

// Speaker colours: distinct hues that keep 4.5:1 contrast for white text on both themes.
const COLOURS = [
  "#1f5fa8",
  "#a23b12",
  "#2d6a2f",
  "#7a3b8f",
  "#8a5a00",
  "#0f6b6b",
  "#a0285a",
  "#4d4d9e",
];

export function speakerColour(index) {
  return COLOURS[index % COLOURS.length];
}
