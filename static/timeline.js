// The speaker timeline of a transcript: one lane per speaker, a block per turn. Clicking a
// block (or empty track space) plays from there; a lane's name renames the speaker.

import { clock, h, speakerColour } from "./dom.js";

// Segments of one speaker closer than this are drawn as one block.
const MERGE_GAP_S = 1.0;

// The name a person sees: a given name as it is; a diarization label (SPEAKER_03) as
// "Speaker N", N its place among the speakers shown in order of first appearance. Not the
// label's own number: a label that got no words is not shown, and the numbers must run from
// 1 to the count the page gives.
export function speakerLabel(raw, speakers) {
  if (!raw) return "Speech";
  if (!/^SPEAKER_\d+$/.test(raw)) return raw;
  return `Speaker ${speakers.filter(Boolean).indexOf(raw) + 1}`;
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

export function timeline(view, speakers) {
  const duration = view.duration || 1;
  const pct = (t) => `${Math.min(100, Math.max(0, (t / duration) * 100))}%`;
  const labels = [];
  const tracks = [];
  const blocks = [];
  speakers.forEach((speaker, index) => {
    const colour = speakerColour(index);
    const name = speakerLabel(speaker, speakers);
    labels.push(
      h(
        "div",
        { class: "lane-label" },
        h("span", { class: "swatch", style: `background:${colour}` }),
        speaker ? view.nameButton(speaker, "name") : name,
      ),
    );
    const track = h("div", { class: "track" });
    for (const turn of turns(view.segments).filter((t) => t.speaker === speaker)) {
      const block = h("button", {
        type: "button",
        class: "block",
        tabindex: -1,
        style: [
          `left:${pct(turn.start)}`,
          `width:max(3px, ${pct(turn.end - turn.start)})`,
          `background:${colour}`,
        ].join(";"),
        "aria-label": `${name}, ${clock(turn.start)} to ${clock(turn.end)}`,
        title: `${name} ${clock(turn.start)}–${clock(turn.end)}`,
      });
      block.addEventListener("click", (event) => {
        event.stopPropagation();
        view.play(turn.start);
      });
      block.dataset.start = turn.start;
      blocks.push(block);
      track.append(block);
    }
    tracks.push(track);
  });
  blocks.sort((a, b) => a.dataset.start - b.dataset.start);
  if (blocks.length) blocks[0].tabIndex = 0;
  view.playhead = h("div", { class: "playhead", "aria-hidden": "true" });
  const area = h(
    "div",
    { class: "tracks" },
    tracks,
    view.playhead,
    h(
      "div",
      { class: "axis", "aria-hidden": "true" },
      h("span", {}, "0:00"),
      h("span", {}, clock(view.duration)),
    ),
  );
  // Clicking empty track space seeks there too.
  area.addEventListener("click", (event) => {
    const box = area.getBoundingClientRect();
    view.play(((event.clientX - box.left) / box.width) * duration);
  });
  const group = h(
    "div",
    { class: "timeline", role: "group", "aria-label": "Speaker timeline" },
    h("div", { class: "lane-labels" }, labels),
    area,
  );
  group.addEventListener("keydown", (event) => rove(event, blocks));
  return group;
}

// One tab stop for the whole timeline; arrow keys move between blocks in time order.
function rove(event, blocks) {
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
