// Search across every transcript (GET /api/search): a hit opens its task at that time.

import { clock, errorBlock, h } from "./dom.js";

const PAGE = 20;

// The server's snippet is HTML-escaped text with <mark> around matches: rebuilt from its text
// and mark nodes only, so nothing else it could hold ever becomes markup.
function snippet(html) {
  const parsed = new DOMParser().parseFromString(`<p>${html}</p>`, "text/html").body.firstChild;
  const out = h("span", { class: "snippet" });
  for (const node of parsed.childNodes) {
    out.append(node.nodeName === "MARK" ? h("mark", {}, node.textContent) : node.textContent);
  }
  return out;
}

export class SearchBox {
  constructor({ form, input, results, api, onOpen }) {
    this.form = form;
    this.input = input;
    this.results = results;
    this.api = api;
    this.onOpen = onOpen;
    this.offset = 0;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(0);
    });
  }

  async run(offset) {
    const q = this.input.value.trim();
    if (!q) {
      this.results.replaceChildren();
      return;
    }
    let page;
    try {
      page = await this.api.get(
        `/api/search?q=${encodeURIComponent(q)}&limit=${PAGE}&offset=${offset}`,
      );
    } catch (exc) {
      this.results.replaceChildren(errorBlock(exc, { role: "alert" }));
      return;
    }
    const items = page.hits.map((hit) => {
      const open = h(
        "button",
        { type: "button", class: "hit" },
        h("strong", {}, hit.filename),
        ` ${clock(hit.start)}`,
        hit.speaker ? ` · ${hit.speaker}` : "",
        h("br"),
        snippet(hit.snippet),
      );
      open.addEventListener("click", () => this.onOpen(hit.task_id, hit.start));
      return h("li", {}, open);
    });
    const parts = [
      h("p", { class: "hint" }, page.hits.length ? `Results for “${q}”` : `Nothing found for “${q}”`),
      h("ol", { class: "hits", "aria-label": "Search results" }, items),
    ];
    if (page.next_offset !== null) {
      const more = h("button", { type: "button", class: "quiet" }, "More results");
      more.addEventListener("click", () => this.run(page.next_offset));
      parts.push(more);
    }
    this.results.replaceChildren(...parts);
  }
}
