// The transcript while the task runs (docs: protocol.md, "The live transcript"): the
// provisional segments the page holds for the task it shows, what a screen reader is told about
// new ones, and where a person is reading, so the final transcript can replace the provisional
// one without moving the text under their eyes.

// A new line is followed when the newest line ends at most this far below the window's bottom.
const FOLLOW_SLACK_PX = 48;
// Screen readers hear about new text at most this often, as one short summary.
const ANNOUNCE_EVERY_MS = 5_000;

// The provisional segments of one task, by index. A run that resumes sends an index again:
// the newer segment replaces the older one.
export class LiveText {
  constructor(taskId, attempt) {
    this.taskId = taskId;
    this.attempt = attempt;
    this.byIndex = new Map();
  }

  get size() {
    return this.byIndex.size;
  }

  // Keeps the segments; returns those that were new and those that replaced one held.
  put(segments) {
    const added = [];
    const replaced = [];
    for (const seg of segments) {
      if (!Number.isInteger(seg?.index) || seg.index < 0) continue;
      (this.byIndex.has(seg.index) ? replaced : added).push(seg);
      this.byIndex.set(seg.index, seg);
    }
    return { added, replaced };
  }

  // The index of the last segment held with every one before it (-1: none): what a
  // subscription asks to continue from, so a gap is filled rather than skipped.
  last() {
    let index = -1;
    while (this.byIndex.has(index + 1)) index += 1;
    return index;
  }

  // A new run keeps the first `count` segments and sends the rest again: forget those.
  trim(count) {
    let dropped = false;
    for (const index of [...this.byIndex.keys()]) {
      if (index >= count) {
        this.byIndex.delete(index);
        dropped = true;
      }
    }
    return dropped;
  }

  list() {
    return [...this.byIndex.values()].sort((a, b) => a.index - b.index);
  }
}

// One polite live region, told "3 new lines" at most every few seconds, never a line at a time.
export class TextNews {
  constructor(region, every = ANNOUNCE_EVERY_MS) {
    this.region = region;
    this.every = every;
    this.pending = 0;
    this.timer = null;
    this.lastAt = -Infinity;
  }

  lines(count) {
    if (!this.region || count <= 0) return;
    this.pending += count;
    if (this.timer) return;
    const wait = this.lastAt + this.every - performance.now();
    if (wait <= 0) this.say();
    else this.timer = setTimeout(() => this.say(), wait);
  }

  say() {
    this.timer = null;
    if (!this.pending) return;
    const n = this.pending;
    this.pending = 0;
    this.lastAt = performance.now();
    const text = n === 1 ? "1 new line in the transcript" : `${n} new lines in the transcript`;
    // A fresh node, so the same words twice in a row are announced twice.
    const p = document.createElement("p");
    p.textContent = text;
    this.region.replaceChildren(p);
  }

  // Another task, or the final transcript: what was still to be said is no longer news.
  clear() {
    clearTimeout(this.timer);
    this.timer = null;
    this.pending = 0;
  }
}

// The top of the part of the window where text can be read: below the player while it sticks
// to the top of the window (wide screens), else the window's top.
function readingTop(player) {
  const box = player?.isConnected ? player.getBoundingClientRect() : null;
  return box && box.top <= 1 ? Math.max(0, box.bottom) : 0;
}

// Whether the person is at the newest line (so new text should stay in view): it ends within
// the window, or just below it. Someone who scrolled up, or is elsewhere on the page, is not;
// nor is someone typing in a field, whose field must not scroll away.
export function atNewest(target) {
  if (!target?.isConnected) return false;
  if (document.activeElement?.matches("input, select, textarea")) return false;
  const box = target.getBoundingClientRect();
  return box.bottom >= 0 && box.bottom <= window.innerHeight + FOLLOW_SLACK_PX;
}

// Scrolls the window just enough for the newest line to be seen whole.
export function showNewest(target) {
  if (!target?.isConnected) return;
  const below = target.getBoundingClientRect().bottom - window.innerHeight;
  if (below > 0) window.scrollBy({ top: below + 8, behavior: "instant" });
}

// The first line the person can see (its time, and where it is on screen), or null when no
// line is on screen.
export function readingAnchor(lines, segments, player) {
  const top = readingTop(player);
  for (let i = 0; i < lines.length; i++) {
    const box = lines[i].getBoundingClientRect();
    if (box.bottom <= top) continue;
    if (box.top >= window.innerHeight) return null;
    return { start: segments[i].start, top: box.top, below: box.top - top };
  }
  return null;
}

// Puts the line nearest the anchor's time back where the anchor was on screen (and never under
// a taller sticky player).
export function keepAnchor(anchor, lines, segments, player) {
  if (!anchor || !lines.length) return;
  let best = 0;
  const off = (i) => Math.abs(segments[i].start - anchor.start);
  for (let i = 1; i < segments.length; i++) if (off(i) < off(best)) best = i;
  const line = lines[best];
  window.scrollBy({ top: line.getBoundingClientRect().top - anchor.top, behavior: "instant" });
  const top = readingTop(player);
  const now = line.getBoundingClientRect().top;
  if (now < top) {
    window.scrollBy({ top: now - top - Math.max(anchor.below, 0), behavior: "instant" });
  }
}
