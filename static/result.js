// The selected task's result: downloads, the audio player, a speaker timeline (one lane per
// speaker) and the transcript. Clicking a line or a timeline block plays from there; the line
// being heard is highlighted.

import { clock, h, speakerColour, stageName } from "./dom.js";
import { STAGE, TERMINAL } from "./stages.js";

const FORMATS = [
  ["json", "JSON"],
  ["txt", "TXT"],
  ["srt", "SRT"],
  ["vtt", "VTT"],
  ["tsv", "TSV"],
];
// Segments of one speaker closer than this are drawn as one block.
const MERGE_GAP_S = 1.0;

export function speakerLabel(raw) {
  if (!raw) return "Speech";
  const match = /^SPEAKER_(\d+)$/.exec(raw);
  return match ? `Speaker ${Number(match[1]) + 1}` : raw;
}

// Consecutive segments of the same speaker, merged into turns for the timeline.
export function turns(segments) {
  const out = [];
  for (const seg of segments) {
    const speaker = seg.speaker || null;
    const last = out[out.length - 1];
    if (last && last.speaker === speaker && seg.start - last.end < MERGE_GAP_S) {
      last.end = Math.max(last.end, seg.end);
    } else {
      out.push({ speaker, start: seg.start, end: seg.end });
    }
  }
  return out;
}

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
    if (snap.stage === STAGE.COMPLETE) {
      const key = `${snap.id}:${snap.attempt}`;
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
    this.segments = data.segments || [];
    this.duration = data.duration || snap.duration || this.segments.at(-1)?.end || 0;
    this.current = -1;
    const speakers = [...new Set(this.segments.map((s) => s.speaker || null))];
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
      h("h3", { class: "visually-hidden" }, "Transcript"),
      this.transcript(speakers),
    );
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

  // -- timeline --------------------------------------------------------------------------------

  timeline(speakers) {
    const duration = this.duration || 1;
    const pct = (t) => `${Math.min(100, Math.max(0, (t / duration) * 100))}%`;
    const labels = [];
    const tracks = [];
    const blocks = [];
    speakers.forEach((speaker, index) => {
      const colour = speakerColour(index);
      labels.push(
        h(
          "div",
          { class: "lane-label" },
          h("span", { class: "swatch", style: `background:${colour}` }),
          speakerLabel(speaker),
        ),
      );
      const track = h("div", { class: "track" });
      for (const turn of turns(this.segments).filter((t) => t.speaker === speaker)) {
        const block = h("button", {
          type: "button",
          class: "block",
          tabindex: -1,
          style: [
            `left:${pct(turn.start)}`,
            `width:max(3px, ${pct(turn.end - turn.start)})`,
            `background:${colour}`,
          ].join(";"),
          "aria-label": `${speakerLabel(speaker)}, ${clock(turn.start)} to ${clock(turn.end)}`,
          title: `${speakerLabel(speaker)} ${clock(turn.start)}–${clock(turn.end)}`,
        });
        block.addEventListener("click", (event) => {
          event.stopPropagation();
          this.play(turn.start);
        });
        block.dataset.start = turn.start;
        blocks.push(block);
        track.append(block);
      }
      tracks.push(track);
    });
    blocks.sort((a, b) => a.dataset.start - b.dataset.start);
    if (blocks.length) blocks[0].tabIndex = 0;
    this.playhead = h("div", { class: "playhead", "aria-hidden": "true" });
    const area = h(
      "div",
      { class: "tracks" },
      tracks,
      this.playhead,
      h(
        "div",
        { class: "axis", "aria-hidden": "true" },
        h("span", {}, "0:00"),
        h("span", {}, clock(this.duration)),
      ),
    );
    // Clicking empty track space seeks there too.
    area.addEventListener("click", (event) => {
      const box = area.getBoundingClientRect();
      this.play(((event.clientX - box.left) / box.width) * duration);
    });
    const group = h(
      "div",
      { class: "timeline", role: "group", "aria-label": "Speaker timeline" },
      h("div", { class: "lane-labels" }, labels),
      area,
    );
    group.addEventListener("keydown", (event) => this.rove(event, blocks));
    return group;
  }

  // One tab stop for the whole timeline; arrow keys move between blocks in time order.
  rove(event, blocks) {
    const index = blocks.indexOf(document.activeElement);
    if (index < 0) return;
    const next = {
      ArrowRight: index + 1,
      ArrowDown: index + 1,
      ArrowLeft: index - 1,
      ArrowUp: index - 1,
      Home: 0,
      End: blocks.length - 1,
    }[event.key];
    if (next === undefined || next < 0 || next >= blocks.length) return;
    event.preventDefault();
    blocks[index].tabIndex = -1;
    blocks[next].tabIndex = 0;
    blocks[next].focus();
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
          ? h("span", { class: changed ? "speaker" : "speaker repeat" }, speakerLabel(seg.speaker))
          : h("span", { class: "speaker repeat" }),
        h("p", { class: "text" }, (seg.text || "").trim()),
      );
      line.addEventListener("click", () => this.play(seg.start, index));
      return line;
    });
    return h("ol", { class: "transcript", "aria-label": "Transcript" }, this.lines);
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
