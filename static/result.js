// The selected task's result: downloads, the audio player, a speaker timeline (one lane per
// speaker) and the transcript. Clicking a line or a timeline block plays from there; the line
// being heard is highlighted.
//
// While the task runs, the provisional transcript: the text as it is decoded, without speakers,
// following the newest line unless the person has scrolled away from it, and playable from any
// line. The final transcript replaces it in place, the line being read kept where it was.

import { clock, h, speakerColour, stageName } from "./dom.js";
import { Editor } from "./edits.js";
import { FORMATS } from "./formats.js";
import { atNewest, keepAnchor, LiveText, readingAnchor, showNewest, TextNews } from "./live.js";
import { STAGE, TERMINAL } from "./stages.js";
import { speakerLabel, timeline } from "./timeline.js";

// The stages in which the provisional transcript is shown (text comes, or waits for its
// word timings and speakers).
const RUNNING = new Set([STAGE.TRANSCRIBING, STAGE.ALIGNING, STAGE.DIARIZING]);

export class ResultView {
  // news: the polite live region told about new provisional lines.
  constructor(root, api, { news = null, voices = null } = {}) {
    this.root = root;
    this.api = api;
    this.voices = voices; // voices.js: "Remember this voice" beside the speakers
    this.id = null;
    this.showing = "blank"; // blank, waiting, live (the provisional transcript) or final
    this.text = null; // LiveText: the provisional segments of the task shown, while it runs
    this.news = new TextNews(news);
    this.finished = new Set(); // tasks seen complete: a re-diarization shows no provisional text
    // Called with a task id when the page starts or stops wanting that task's text (app.js
    // hands it to the connection, which subscribes again with lastSegment(id)).
    this.onText = () => {};
    this.player = null;
    this.liveList = null;
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
    this.stopText();
    this.id = null;
    this.loaded = null;
    this.showing = "blank";
    this.root.replaceChildren(
      h("h2", { id: "result-title" }, "Transcript"),
      h("p", { class: "placeholder" }, "Choose a task in the list to see its transcript here."),
    );
  }

  // Called with the selected task's snapshot whenever it changes.
  show(snap) {
    if (snap.id !== this.id) {
      this.stopText();
      this.id = snap.id;
      this.loaded = null;
      this.showing = "blank";
    }
    this.snap = snap;
    if (snap.stage === STAGE.COMPLETE) {
      this.finished.add(snap.id);
      // The final transcript is loaded whole: no more provisional text, now or on a reconnect.
      this.text = null;
      this.news.clear();
      // An edit anywhere publishes "Revision N saved": fetch the transcript again.
      const key = `${snap.id}:${snap.attempt}:${snap.detail}`;
      // Except the page's own edit: its minimal answer already brought what changed.
      const own = this.data && snap.detail === `Revision ${this.data.revision} saved`;
      if (own) this.loaded = key;
      if (this.loaded !== key) {
        this.loaded = key;
        this.load(snap);
      }
      return;
    }
    this.loaded = null;
    if (!this.finished.has(snap.id)) this.wantText(snap);
    if (this.text && (RUNNING.has(snap.stage) || this.text.size)) this.showLive(snap);
    else this.showWaiting(snap);
  }

  showWaiting(snap) {
    const words = this.waiting(snap);
    const shown = this.root.querySelector(".placeholder")?.textContent;
    if (this.showing === "waiting" && shown === words) return;
    this.showing = "waiting";
    this.root.replaceChildren(
      h("h2", { id: "result-title" }, snap.filename),
      h("p", { class: "placeholder" }, words),
    );
  }

  // -- the provisional transcript --------------------------------------------------------------

  // The index of the last provisional segment held of this task (-1: none yet), or null when
  // the page does not want its text (not shown, or complete).
  lastSegment(id) {
    return this.text && this.id === id && this.text.taskId === id ? this.text.last() : null;
  }

  wantText(snap) {
    if (!this.text) {
      this.text = new LiveText(snap.id, snap.attempt);
      this.onText(snap.id);
      return;
    }
    if (snap.attempt > this.text.attempt) {
      // A new run keeps the text of the pieces it finished and sends the rest again.
      this.text.attempt = snap.attempt;
      if (this.text.trim(snap.segments_count ?? 0) && this.showing === "live") this.fillLive();
      this.onText(snap.id);
    }
  }

  stopText() {
    const old = this.text;
    this.text = null;
    this.news.clear();
    if (old) this.onText(old.taskId);
  }

  // Segments of a task's provisional transcript (a WebSocket message or a poll's answer).
  addSegments(id, segments) {
    if (!this.text || id !== this.id || this.text.taskId !== id) return;
    const live = this.showing === "live";
    const following = live && atNewest(this.lines.at(-1) || this.liveList);
    const { added, replaced } = this.text.put(segments);
    if (!added.length && !replaced.length) return;
    if (!live) {
      if (this.snap && this.snap.id === id) this.show(this.snap);
      return;
    }
    for (const seg of [...replaced, ...added]) this.placeLine(seg);
    this.liveStatus();
    if (following) showNewest(this.lines.at(-1));
    this.news.lines(added.length);
  }

  // The final transcript exists (segments_final, or a poll that says final).
  finalText(id) {
    if (id !== this.id) return;
    this.news.clear();
  }

  showLive(snap) {
    if (this.showing !== "live") {
      this.showing = "live";
      this.data = null;
      this.speakers = [null];
      this.duration = snap.duration || 0;
      this.ensureAudio(snap);
      this.playhead = null;
      this.player = h("div", { class: "player" }, this.audio);
      this.liveMeta = h("p", { class: "meta" });
      this.liveList = h("ol", { class: "live-transcript", "aria-label": "Provisional transcript" });
      this.liveEmpty = h("p", { class: "placeholder" });
      this.liveNote = h("span");
      this.root.replaceChildren(
        h("h2", { id: "result-title" }, snap.filename),
        this.liveMeta,
        h(
          "p",
          { class: "provisional-note" },
          h("span", { class: "badge" }, "Provisional"),
          " ",
          this.liveNote,
        ),
        this.player,
        h("h3", { class: "visually-hidden" }, "Provisional transcript"),
        this.liveList,
        this.liveEmpty,
      );
      this.fillLive();
    }
    this.liveStatus();
  }

  fillLive() {
    this.segments = this.text.list();
    this.current = -1;
    this.lines = this.segments.map((seg) => this.liveLine(seg));
    this.liveList.replaceChildren(...this.lines);
  }

  // A segment's line, in index order: a new one is added, a resent one replaces its line.
  placeLine(seg) {
    let at = this.segments.length;
    while (at > 0 && this.segments[at - 1].index > seg.index) at -= 1;
    const line = this.liveLine(seg);
    if (at > 0 && this.segments[at - 1].index === seg.index) {
      at -= 1;
      this.lines[at].replaceWith(line);
      this.segments[at] = seg;
      this.lines[at] = line;
      if (this.current === at) line.setAttribute("aria-current", "true");
      return;
    }
    this.liveList.insertBefore(line, this.lines[at] || null);
    this.segments.splice(at, 0, seg);
    this.lines.splice(at, 0, line);
    if (this.current >= at) this.current += 1;
  }

  liveLine(seg) {
    const line = h(
      "li",
      { class: "line", dataset: { index: seg.index } },
      h(
        "button",
        { type: "button", class: "time", "aria-label": `Play from ${clock(seg.start)}` },
        clock(seg.start),
      ),
      h("span", { class: "speaker repeat" }),
      h("p", { class: "text" }, (seg.text || "").trim()),
    );
    line.addEventListener("click", () => this.play(seg.start, this.lines.indexOf(line)));
    return line;
  }

  liveStatus() {
    const snap = this.snap;
    const count = this.segments.length;
    const parts = [stageName(snap.stage)];
    if (snap.duration) parts.push(`duration ${clock(snap.duration)}`);
    parts.push(count === 1 ? "1 line so far" : `${count} lines so far`);
    this.liveMeta.textContent = parts.join(" · ");
    this.liveEmpty.hidden = count > 0;
    this.liveEmpty.textContent = this.waiting(snap);
    this.liveNote.textContent = TERMINAL.has(snap.stage)
      ? "The text transcribed before the task stopped, without speakers."
      : "The text may still change. Speakers and word timings are added when the task is " +
        "complete, and the final transcript then replaces this one.";
  }

  // One player per task, kept from the provisional transcript to the final one (and across
  // edits), so what is playing goes on playing.
  ensureAudio(snap) {
    if (this.audio && this.audio.dataset.task === snap.id) return;
    this.audio = h("audio", {
      controls: true,
      preload: "metadata",
      src: `/api/tasks/${snap.id}/audio`,
      "aria-label": `Recording: ${snap.filename}`,
      dataset: { task: snap.id },
    });
    this.audio.addEventListener("timeupdate", () => this.follow());
    this.audio.addEventListener("seeked", () => this.follow());
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
    if (this.finished.has(snap.id)) {
      return `${stageName(snap.stage)}. The transcript appears here when the task is complete.`;
    }
    return `${stageName(snap.stage)}. The text appears here as it is transcribed.`;
  }

  async load(snap) {
    const key = this.loaded;
    let data;
    try {
      data = await this.api.get(`/api/tasks/${snap.id}/transcript?format=json`);
    } catch (exc) {
      if (this.loaded !== key) return;
      this.loaded = null;
      this.showing = "error";
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
    // The provisional transcript on screen: the final one takes its place, and the line the
    // person was reading stays where it was.
    const anchor =
      this.showing === "live" ? readingAnchor(this.lines, this.segments, this.player) : null;
    this.render(snap, data);
    keepAnchor(anchor, this.lines, this.segments, this.player);
  }

  render(snap, data) {
    this.showing = "final";
    this.data = data;
    this.segments = data.segments || [];
    this.duration = data.duration || snap.duration || this.segments.at(-1)?.end || 0;
    this.current = -1;
    const speakers = [...new Set(this.segments.map((s) => s.speaker || null))];
    this.speakers = speakers;
    this.ensureAudio(snap);
    this.player = h("div", { class: "player" }, this.audio, this.timeline(speakers));
    this.root.replaceChildren(
      h("h2", { id: "result-title" }, snap.filename),
      h("p", { class: "meta" }, this.summary(snap, data, speakers)),
      this.downloads(snap),
      this.player,
      this.voices ? this.voices.block(this) : null,
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
