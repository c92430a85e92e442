// The task list: one card per task with its stage, percentage, sub-line, error and actions.
// Snapshots are applied only when their seq is above the one shown.

import { clock, errorBlock, h, megabytes, stageName, when } from "./dom.js";
import { STAGE, TERMINAL } from "./stages.js";

const LANGUAGES = new Intl.DisplayNames(undefined, { type: "language" });

function languageName(code) {
  if (!code) return "";
  try {
    return LANGUAGES.of(code) || code;
  } catch {
    return code;
  }
}

export class TaskList {
  constructor({ list, empty, api, announce, onSelect, onUpdate, onRemove }) {
    this.list = list;
    this.empty = empty;
    this.api = api;
    this.announce = announce;
    this.onSelect = onSelect;
    this.onUpdate = onUpdate;
    this.onRemove = onRemove;
    this.items = new Map();
    this.selected = null;
    // Whose task each card is, shown once the server has keys or a token (signed-in people).
    this.showOwner = false;
  }

  seq(id) {
    return this.items.get(id)?.snap.seq ?? 0;
  }

  snapshot(id) {
    return this.items.get(id)?.snap ?? null;
  }

  // Returns true when the snapshot was newer than the one shown.
  apply(snap) {
    let item = this.items.get(snap.id);
    if (item && snap.seq <= item.snap.seq) return false;
    const before = item?.snap.stage;
    if (!item) {
      item = { snap, upload: null, abort: null, localError: null, refs: null };
      this.items.set(snap.id, item);
      this.insert(item);
    }
    item.snap = snap;
    if (snap.error) item.localError = null;
    this.render(item);
    if (before && before !== snap.stage) {
      this.announce(`${snap.filename}: ${stageName(snap.stage)}`);
    }
    this.onUpdate(snap);
    return true;
  }

  // Local upload state, which drives the Uploading percentage while the bytes leave the browser.
  setUpload(id, upload, abort = null) {
    const item = this.items.get(id);
    if (!item) return;
    item.upload = upload;
    item.abort = upload ? abort || item.abort : null;
    this.render(item);
  }

  setLocalError(id, error) {
    const item = this.items.get(id);
    if (!item) return;
    item.localError = error;
    this.render(item);
  }

  remove(id) {
    const item = this.items.get(id);
    if (!item) return;
    item.abort?.();
    item.refs.node.remove();
    this.items.delete(id);
    this.empty.hidden = this.items.size > 0;
    this.onRemove(id);
  }

  // Take away the cards a filter no longer shows; uploads in progress stay.
  keepOnly(wanted) {
    for (const [id, item] of [...this.items]) {
      if (!wanted(item.snap) && !item.upload) this.remove(id);
    }
  }

  select(id) {
    this.selected = id;
    for (const [key, item] of this.items) {
      if (key === id) item.refs.node.setAttribute("aria-current", "true");
      else item.refs.node.removeAttribute("aria-current");
    }
  }

  // -- rendering -------------------------------------------------------------------------------

  insert(item) {
    item.refs = this.build(item.snap);
    const created = item.snap.created_at;
    const older = [...this.list.children].find(
      (node) => this.items.get(node.dataset.id)?.snap.created_at < created,
    );
    this.list.insertBefore(item.refs.node, older || null);
    this.empty.hidden = true;
    if (this.selected === item.snap.id) item.refs.node.setAttribute("aria-current", "true");
  }

  build(snap) {
    const id = snap.id;
    const nameId = `task-${id}-name`;
    const refs = {
      name: h("button", { type: "button", class: "task-name", id: nameId }, snap.filename),
      stage: h("span", { class: "stage" }),
      pct: h("span", { class: "pct" }),
      fill: h("span", { class: "bar-fill" }),
      detail: h("p", { class: "detail" }),
      error: h("div", { class: "error-slot" }),
      actionError: h("div", { class: "error-slot" }),
      meta: h("p", { class: "meta" }),
      cancel: h("button", { type: "button", onclick: () => this.act(id, "cancel") }, "Cancel"),
      retry: h("button", { type: "button", onclick: () => this.act(id, "retry") }, "Retry"),
      remove: h(
        "button",
        { type: "button", class: "quiet", onclick: () => this.act(id, "delete") },
        "Delete",
      ),
    };
    refs.name.addEventListener("click", () => this.onSelect(id));
    refs.bar = h(
      "span",
      {
        class: "bar",
        role: "progressbar",
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-labelledby": nameId,
      },
      refs.fill,
    );
    refs.node = h(
      "li",
      { class: "task", "aria-labelledby": nameId, dataset: { id } },
      h(
        "div",
        { class: "task-head" },
        refs.name,
        h("span", { class: "state" }, refs.stage, " ", refs.pct),
      ),
      refs.bar,
      refs.detail,
      refs.error,
      h(
        "div",
        { class: "task-foot" },
        refs.meta,
        h("div", { class: "actions" }, refs.cancel, refs.retry, refs.remove),
      ),
      refs.actionError,
    );
    return refs;
  }

  percent(item) {
    const { snap, upload } = item;
    if (snap.stage === STAGE.UPLOADING && upload && upload.total) {
      return Math.min(100, Math.floor((upload.loaded * 100) / upload.total));
    }
    if (snap.stage === STAGE.UPLOADING) return snap.stage_progress || 0;
    return snap.progress || 0;
  }

  detail(item) {
    const { snap, upload } = item;
    if (snap.stage !== STAGE.UPLOADING || !upload) return snap.detail || "";
    if (upload.waiting) return "Waiting for the files before it";
    return `Uploaded ${megabytes(upload.loaded)} of ${megabytes(upload.total)} MB`;
  }

  render(item) {
    const { snap, refs } = item;
    const stage = stageName(snap.stage);
    const pct = this.percent(item);
    refs.node.dataset.stage = snap.stage;
    refs.name.textContent = snap.filename;
    refs.stage.textContent = stage;
    refs.pct.textContent = `${pct}%`;
    refs.fill.style.width = `${pct}%`;
    refs.bar.setAttribute("aria-valuenow", String(pct));
    refs.bar.setAttribute("aria-valuetext", `${stage} ${pct}%`);
    // A failed task's sub-line is its error message, shown in the error block instead.
    refs.detail.textContent = snap.stage === STAGE.FAILED ? "" : this.detail(item);
    refs.detail.hidden = !refs.detail.textContent;
    const error = snap.error && snap.stage === STAGE.FAILED ? snap.error : item.localError;
    const shownCode = refs.error.dataset.code || "";
    const code = error ? `${error.code}:${error.detail}` : "";
    if (code !== shownCode) {
      refs.error.replaceChildren(...(error ? [errorBlock(error)] : []));
      refs.error.dataset.code = code;
    }
    refs.cancel.hidden = TERMINAL.has(snap.stage);
    const retryable = [STAGE.FAILED, STAGE.CANCELLED].includes(snap.stage);
    refs.retry.hidden = !(retryable && snap.duration != null);
    refs.meta.textContent = this.meta(snap);
  }

  meta(snap) {
    const parts = [when(snap.created_at)];
    if (this.showOwner && snap.owner) parts.push(`by ${snap.owner}`);
    if (snap.duration != null) parts.push(clock(snap.duration));
    const language = snap.language || snap.options?.language;
    if (language) parts.push(languageName(language));
    const opts = snap.options || {};
    if (opts.diarize === false) parts.push("no speaker labels");
    else if (opts.num_speakers) parts.push(`${opts.num_speakers} speakers`);
    else if (opts.min_speakers || opts.max_speakers) {
      parts.push(`${opts.min_speakers || 1}–${opts.max_speakers || "?"} speakers`);
    }
    return parts.filter(Boolean).join(" · ");
  }

  // -- actions ---------------------------------------------------------------------------------

  async act(id, action) {
    const item = this.items.get(id);
    if (!item) return;
    item.refs.actionError.replaceChildren();
    const question = `Delete ${item.snap.filename} and its transcript?`;
    if (action === "delete" && !window.confirm(question)) return;
    try {
      if (action === "delete") {
        await this.api.delete(`/api/tasks/${id}`);
        this.announce(`${item.snap.filename} deleted`);
        this.remove(id);
        return;
      }
      const snap = await this.api.post(`/api/tasks/${id}/${action}`);
      // Stop sending only once the server knows: a cut upload alone would fail the task.
      if (action === "cancel") item.abort?.();
      this.apply(snap);
    } catch (exc) {
      item.refs.actionError.replaceChildren(errorBlock(exc, { role: "alert" }));
    }
  }
}
