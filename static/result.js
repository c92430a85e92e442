// The selected task's result: downloads, the audio player, a speaker timeline (one lane per
// speaker) and the transcript. Clicking a line or a timeline block plays from there; the line
// being heard is highlighted.

import { clock, h, speakerColour, stageName } from "./dom.js";
import { Editor } from "./edits.js";
import { FORMATS } from "./formats.js";
import { STAGE, TERMINAL } from "./stages.js";
import { speakerLabel, timeline } from "./timeline.js";

export class ResultView {
  constructor(root, api) {
    this.root = root;
    this.api = api;
    this.id = null;
    this.loaded = null; // "id:seq" of the transcript on screen
    this.segments = [];
    this.lines = [];
    this.current = -1;
    this.audio = null;
    this.playhead = null;
    this.duration = 0;
    this.data = null; // the json on screen (its revision is what an edit applies to)
    this.snap = null;
    this.seekTo = null; // a time to play from once the transcript is on screen
    this.editor = new Editor(this, api);
    this.blank();
  }

  blank() {
    this.id = null;
    this.loaded = null;
    this.root.replaceChildren(
      h("h2", { id: "result-title" }, "Transcript"),
      h("p", { class: "placeholder" }, "Choose a task in the list to see its transcript here."),
    );
  }

  // Called with the selected task's snapshot whenever it changes.
  show(snap) {
    if (snap.id !== this.id) {
      this.id = snap.id;
      this.loaded = null;
    }
    this.snap = snap;
    if (snap.stage === STAGE.COMPLETE) {
      // An edit anywhere publishes "Revision N saved": fetch the transcript again.
      const key = `${snap.id}:${snap.attempt}:${snap.detail}`;
      if (this.loaded !== key) {
        this.loaded = key;
        this.load(snap);
      }
      return;
    }
    this.loaded = null;
    this.root.replaceChildren(
      h("h2", { id: "result-title" }, snap.filename),
      h("p", { class: "placeholder" }, this.waiting(snap)),
    );
  }

  // Open at a time (a search hit): now if this task is on screen, else once it is.
  seek(id, seconds) {
    if (this.id === id && this.audio && this.data) this.play(seconds);
    else this.seekTo = seconds;
  }

  reload() {
    this.loaded = null;
    if (this.snap) this.show(this.snap);
  }

  // A saved edit's answer: the new revision, shown where the player was.
  update(data) {
    const at = this.audio ? this.audio.currentTime : 0;
    this.render(this.snap, data);
    if (at) this.audio.currentTime = at;
  }

  waiting(snap) {
    if (snap.stage === STAGE.FAILED) return "This task failed; the list shows what went wrong.";
    if (snap.stage === STAGE.CANCELLED) return "This task was cancelled.";
    if (TERMINAL.has(snap.stage)) return "";
    return `${stageName(snap.stage)}. The transcript appears here when the task is complete.`;
  }

  async load(snap) {
    const key = this.loaded;
    let data;
    try {
      data = await this.api.get(`/api/tasks/${snap.id}/transcript?format=json`);
    } catch (exc) {
      if (this.loaded !== key) return;
      this.loaded = null;
      this.root.replaceChildren(
        h("h2", { id: "result-title" }, snap.filename),
        h(
          "p",
          { class: "error-message", role: "alert" },
          `The transcript could not be loaded: ${exc.message}`,
        ),
      );
      return;
    }
    if (this.loaded !== key) return;
    this.render(snap, data);
  }

  render(snap, data) {
    this.data = data;
    this.segments = data.segments || [];
    this.duration = data.duration || snap.duration || this.segments.at(-1)?.end || 0;
    this.current = -1;
    const speakers = [...new Set(this.segments.map((s) => s.speaker || null))];
    this.speakers = speakers;
    this.audio = h("audio", {
      controls: true,
      preload: "metadata",
      src: `/api/tasks/${snap.id}/audio`,
      "aria-label": `Recording: ${snap.filename}`,
    });
    this.audio.addEventListener("timeupdate", () => this.follow());
    this.audio.addEventListener("seeked", () => this.follow());
    this.root.replaceChildren(
      h("h2", { id: "result-title" }, snap.filename),
      h("p", { class: "meta" }, this.summary(snap, data, speakers)),
      this.downloads(snap),
      h("div", { class: "player" }, this.audio, this.timeline(speakers)),
      this.editor.status,
      h("h3", { class: "visually-hidden" }, "Transcript"),
      this.transcript(speakers),
      this.editor.rediarizeForm(),
    );
    if (this.seekTo !== null) {
      this.play(this.seekTo);
      this.seekTo = null;
    }
  }

  // A speaker's name as a button that renames it.
  nameButton(speaker, className) {
    const shown = speakerLabel(speaker, this.speakers);
    const button = h(
      "button",
      { type: "button", class: className, "aria-label": `Rename ${shown}`, title: "Rename" },
      shown,
    );
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      this.editor.rename(speaker, shown);
    });
    return button;
  }

  summary(snap, data, speakers) {
    const named = speakers.filter(Boolean).length;
    const parts = [`Duration ${clock(this.duration)}`];
    if (data.language) parts.push(`language ${data.language}`);
    if (named) parts.push(named === 1 ? "1 speaker" : `${named} speakers`);
    parts.push(`${this.segments.length} segments`);
    return parts.join(" · ");
  }

  downloads(snap) {
    const stem = snap.filename.replace(/\.[^.]*$/, "") || "transcript";
    const links = FORMATS.map(([fmt, label]) => {
      const href = `/api/tasks/${snap.id}/transcript?format=${fmt}&download`;
      return h("li", {}, h("a", { href, download: `${stem}.${fmt}` }, label));
    });
    if (snap.options?.diarize !== false) {
      const href = `/api/tasks/${snap.id}/diarization.rttm`;
      links.push(h("li", {}, h("a", { href, download: `${stem}.rttm` }, "RTTM")));
    }
    return h(
      "nav",
      { class: "downloads", "aria-labelledby": "downloads-title" },
      h("h3", { id: "downloads-title" }, "Download"),
      h("ul", {}, links),
    );
  }

  timeline(speakers) {
    return timeline(this, speakers);
  }

  // -- transcript ------------------------------------------------------------------------------

  transcript(speakers) {
    let previous;
    this.lines = this.segments.map((seg, index) => {
      const colour = speakerColour(speakers.indexOf(seg.speaker || null));
      const changed = seg.speaker !== previous;
      previous = seg.speaker;
      const line = h(
        "li",
        { class: changed ? "line turn" : "line", style: `--speaker:${colour}` },
        h(
          "button",
          { type: "button", class: "time", "aria-label": `Play from ${clock(seg.start)}` },
          clock(seg.start),
        ),
        seg.speaker
          ? this.nameButton(seg.speaker, changed ? "speaker" : "speaker repeat")
          : h("span", { class: "speaker repeat" }),
        h("p", { class: "text" }, (seg.text || "").trim()),
        this.correctButton(seg, index),
      );
      line.addEventListener("click", () => this.play(seg.start, index));
      return line;
    });
    return h("ol", { class: "transcript", "aria-label": "Transcript" }, this.lines);
  }

  correctButton(seg, index) {
    const label = `Correct the line at ${clock(seg.start)}`;
    const button = h("button", { type: "button", class: "edit", "aria-label": label }, "Edit");
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      this.editor.correct(index);
    });
    return button;
  }

  play(seconds, index = null) {
    if (!this.audio) return;
    this.audio.currentTime = seconds;
    this.highlight(index ?? this.indexAt(seconds));
    this.audio.play().catch(() => {
      // Autoplay rules or a missing audio device: the position is set, the person can press play.
    });
  }

  indexAt(t) {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.segments[mid].start <= t) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found >= 0 && t < this.segments[found].end ? found : -1;
  }

  follow() {
    const t = this.audio.currentTime;
    if (this.playhead) {
      this.playhead.style.left = `${Math.min(100, (t / (this.duration || 1)) * 100)}%`;
    }
    const index = this.indexAt(t);
    if (index !== this.current) {
      this.highlight(index);
      if (index >= 0 && !this.audio.paused) this.lines[index].scrollIntoView({ block: "nearest" });
    }
  }

  highlight(index) {
    this.lines[this.current]?.removeAttribute("aria-current");
    this.current = index;
    this.lines[index]?.setAttribute("aria-current", "true");
  }
}
