// Work on a transcript after the run: rename a speaker, correct a line, re-run diarization.
// Every edit names the revision on screen (If-Match); when another tab saved first the server
// answers 412 and the page offers to reload instead of overwriting. Each asks for only what
// changed (Prefer: return=minimal), the same few hundred bytes however long the transcript,
// and applies it to the transcript on screen.

import { errorBlock, h } from "./dom.js";

export const REDIARIZE_NOTE =
  "Re-running diarization keeps your text corrections; speaker names and moved lines are reset.";

// The transcript on screen (json, speakers by name) with an edit's answer applied: the whole
// revision as it is (a server that ignores the preference), or what changed (RevisionChange:
// the names, the segment edited) on top of the revision it edited. Null when the answer is
// not the next revision of `data`: the caller loads the transcript again. The words'
// speakers, which the page does not show, stay as they were.
export function applyChange(data, answer) {
  if (Array.isArray(answer.speakers)) return answer;
  if (answer.revision !== data.revision + 1) return null;
  const names = answer.speaker_names;
  const segments = data.segments.slice();
  for (const { index, ...segment } of answer.segments) segments[index] = segment;
  for (const [at, seg] of segments.entries()) {
    const label = seg.speaker_label;
    const speaker = label ? names[label] || label : seg.speaker;
    if (speaker !== seg.speaker) segments[at] = { ...seg, speaker };
  }
  const speakers = [...new Set(segments.map((s) => s.speaker).filter(Boolean))];
  // A speaker renamed by hand is no longer marked as recognised (as the server does).
  const before = data.speaker_names || {};
  const profiles = Object.fromEntries(
    Object.entries(data.speaker_profiles || {}).filter(([label]) => names[label] === before[label]),
  );
  return {
    ...data,
    revision: answer.revision,
    source: answer.source,
    speaker_names: names,
    speaker_profiles: profiles,
    speakers,
    segments,
  };
}

export class Editor {
  // view: the ResultView; it supplies id, data (the json on screen) and reload()/render().
  constructor(view, api) {
    this.view = view;
    this.api = api;
    this.status = h("div", { class: "edit-status", role: "status" });
  }

  etag() {
    return `"${this.view.id}-${this.view.data.revision}"`;
  }

  async patch(path, body) {
    this.status.replaceChildren();
    try {
      const answer = await this.api.request("PATCH", `/api/tasks/${this.view.id}/${path}`, {
        json: body,
        headers: { "If-Match": this.etag(), Prefer: "return=minimal" },
      });
      const data = applyChange(this.view.data, answer);
      if (data) this.view.update(data);
      else this.view.reload();
    } catch (exc) {
      if (exc.status === 412) this.offerReload();
      else this.status.replaceChildren(errorBlock(exc, { role: "alert" }));
    }
  }

  offerReload() {
    const reload = h("button", { type: "button", class: "button" }, "Reload the transcript");
    reload.addEventListener("click", () => {
      this.status.replaceChildren();
      this.view.reload();
    });
    this.status.replaceChildren(
      h(
        "p",
        { class: "error-message", role: "alert" },
        "This transcript was changed in another tab or by someone else; your edit was not saved.",
      ),
      reload,
    );
  }

  // Every label that bears this name (two labels named alike read as one speaker).
  labelsOf(name) {
    const names = this.view.data.speaker_names || {};
    const labels = new Set();
    for (const seg of this.view.data.segments) {
      const label = seg.speaker_label;
      if (label && (names[label] || label) === name) labels.add(label);
    }
    return [...labels];
  }

  rename(name, shown) {
    const given = window.prompt(`New name for ${shown}:`, shown);
    if (given === null || given.trim() === "" || given.trim() === shown) return;
    const body = Object.fromEntries(this.labelsOf(name).map((label) => [label, given.trim()]));
    this.patch("speakers", body);
  }

  correct(index) {
    const segment = this.view.data.segments[index];
    const text = window.prompt("Correct the text of this line:", segment.text.trim());
    if (text === null || text.trim() === "" || text.trim() === segment.text.trim()) return;
    this.patch(`segments/${index}`, { text });
  }

  rediarizeForm() {
    const count = h("input", {
      id: "rediarize-speakers",
      type: "number",
      min: "1",
      max: "32",
      inputmode: "numeric",
    });
    const form = h(
      "form",
      { class: "rediarize", "aria-labelledby": "rediarize-title" },
      h("h3", { id: "rediarize-title" }, "Speakers again"),
      h("p", { class: "hint" }, REDIARIZE_NOTE),
      h("label", { for: "rediarize-speakers" }, "Number of speakers (empty: detect)"),
      count,
      h("button", { type: "submit", class: "button" }, "Re-run diarization"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = count.value === "" ? {} : { num_speakers: Number(count.value) };
      this.status.replaceChildren();
      try {
        await this.api.post(`/api/tasks/${this.view.id}/rediarize`, body);
      } catch (exc) {
        this.status.replaceChildren(errorBlock(exc, { role: "alert" }));
      }
    });
    return form;
  }
}
