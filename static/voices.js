// Known voices on the page. Beside each speaker of a finished task: "Remember this voice" (a
// new voice profile, or one more sample of the profile of that name), or, for a speaker the
// server recognised, the profile's name with a "Recognised" mark and "Not <name>" to undo it.
// The profiles panel lists every profile with how much speech it rests on, to rename or
// delete (which deletes every embedding of that person).

import { errorBlock, h } from "./dom.js";
import { speakerLabel } from "./timeline.js";

function speech(seconds) {
  const minutes = Math.round(seconds / 60);
  return seconds >= 90 ? `${minutes} min of speech` : `${Math.round(seconds)} s of speech`;
}

export class Voices {
  // list, empty, status: the profiles panel's parts; onTaskChanged(): reload the transcript.
  constructor(api, { list, empty, status, onTaskChanged = () => {} }) {
    this.api = api;
    this.list = list;
    this.empty = empty;
    this.status = status;
    this.onTaskChanged = onTaskChanged;
    this.profiles = [];
    this.enabled = true; // false on a server started with --no-profiles
  }

  async refresh() {
    try {
      const answer = await this.api.get("/api/profiles");
      this.profiles = answer.profiles;
      this.enabled = answer.enabled !== false;
    } catch (exc) {
      this.status.replaceChildren(errorBlock(exc, { role: "alert" }));
      return;
    }
    this.renderPanel();
  }

  renderPanel() {
    this.empty.hidden = this.profiles.length > 0;
    this.list.replaceChildren(
      ...this.profiles.map((profile) => {
        const count = profile.samples.length;
        const rename = h(
          "button",
          { type: "button", class: "quiet", "aria-label": `Rename ${profile.name}` },
          "Rename",
        );
        rename.addEventListener("click", () => this.rename(profile));
        const remove = h(
          "button",
          { type: "button", class: "quiet danger", "aria-label": `Delete ${profile.name}` },
          "Delete",
        );
        remove.addEventListener("click", () => this.remove(profile));
        return h(
          "li",
          { class: "profile" },
          h("span", { class: "profile-name" }, profile.name),
          h(
            "span",
            { class: "hint" },
            `${speech(profile.seconds)}, ${count} sample${count === 1 ? "" : "s"}`,
          ),
          rename,
          remove,
        );
      }),
    );
  }

  // Whether the server took the change (its error shown in the panel otherwise).
  async call(method, path, json) {
    this.status.replaceChildren();
    try {
      await this.api.request(method, path, { json });
      return true;
    } catch (exc) {
      this.status.replaceChildren(errorBlock(exc, { role: "alert" }));
      return false;
    }
  }

  async rename(profile) {
    const given = window.prompt(`New name for ${profile.name}:`, profile.name);
    if (given === null || given.trim() === "" || given.trim() === profile.name) return;
    if (await this.call("PATCH", `/api/profiles/${profile.id}`, { name: given.trim() })) {
      this.status.replaceChildren(h("p", {}, `Renamed to ${given.trim()}.`));
      await this.refresh();
    }
  }

  async remove(profile) {
    const sure = window.confirm(
      `Delete ${profile.name}? Every stored sample of this voice is deleted; transcripts keep ` +
        "the names already written in them.",
    );
    if (!sure) return;
    if (await this.call("DELETE", `/api/profiles/${profile.id}`)) {
      this.status.replaceChildren(h("p", {}, `${profile.name} deleted.`));
      await this.refresh();
    }
  }

  // -- beside a finished task's speakers -------------------------------------------------------

  // The speakers of the transcript on screen: label, name, and the profile it was matched to.
  speakersOf(data) {
    const names = data.speaker_names || {};
    const labels = [...new Set(data.segments.map((s) => s.speaker_label).filter(Boolean))];
    return labels.map((label) => ({
      label,
      name: names[label] || label,
      match: (data.speaker_profiles || {})[label] || null,
    }));
  }

  block(view) {
    const data = view.data;
    if (!data || !data.segments.some((s) => s.speaker_label)) return null;
    const status = h("div", { class: "voice-status", role: "status" });
    const rows = this.speakersOf(data).map((speaker) => this.row(view, speaker, status));
    return h(
      "section",
      { class: "voices", "aria-labelledby": "voices-title" },
      h("h3", { id: "voices-title" }, "Voices"),
      h("ul", {}, rows),
      status,
    );
  }

  row(view, speaker, status) {
    const shown = speakerLabel(speaker.name, view.speakers);
    if (speaker.match) {
      const percent = Math.round(speaker.match.similarity * 100);
      const undo = h(
        "button",
        { type: "button", class: "quiet", "aria-label": `Not ${shown}: undo the recognition` },
        `Not ${shown}`,
      );
      undo.addEventListener("click", () => this.undo(view, speaker, status));
      return h(
        "li",
        { class: "voice" },
        h("span", { class: "voice-name" }, shown),
        h("span", { class: "recognised", title: `Similarity ${percent}%` }, "Recognised"),
        undo,
      );
    }
    if (!this.enabled) return h("li", { class: "voice" }, h("span", { class: "voice-name" }, shown));
    const remember = h(
      "button",
      { type: "button", class: "quiet", "aria-label": `Remember the voice of ${shown}` },
      "Remember this voice",
    );
    remember.addEventListener("click", () => this.remember(view, speaker, status));
    return h("li", { class: "voice" }, h("span", { class: "voice-name" }, shown), remember);
  }

  async remember(view, speaker, status) {
    const given = window.prompt(
      "Whose voice is this? A new name makes a new profile; the name of a profile adds this " +
        "speaker to it.",
      /^SPEAKER_\d+$/.test(speaker.name) ? "" : speaker.name,
    );
    if (given === null || given.trim() === "") return;
    const name = given.trim();
    const existing = this.profiles.find((p) => p.name.toLowerCase() === name.toLowerCase());
    const body = { task_id: view.id, speaker: speaker.label };
    status.replaceChildren();
    try {
      if (existing) await this.api.post(`/api/profiles/${existing.id}/samples`, body);
      else await this.api.post("/api/profiles", { ...body, name });
    } catch (exc) {
      status.replaceChildren(errorBlock(exc, { role: "alert" }));
      return;
    }
    await this.refresh();
    this.onTaskChanged();
  }

  async undo(view, speaker, status) {
    status.replaceChildren();
    const path = `/api/tasks/${view.id}/speakers/${encodeURIComponent(speaker.label)}/profile`;
    try {
      await this.api.request("DELETE", path);
    } catch (exc) {
      status.replaceChildren(errorBlock(exc, { role: "alert" }));
      return;
    }
    this.onTaskChanged();
  }
}
