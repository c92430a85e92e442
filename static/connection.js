// The client connection manager (docs: DESIGN "Client connection manager", protocol.md).
//
// One WebSocket to /api/ws carries every watched task. When it is lost the page reconnects at
// once, then after the waits in settings.backoff (0, 1, 2, 4, 8 s, up to 10% jitter); after the
// last failed attempt it shows Disconnected, long-polls each watched task over HTTP, and tries the
// WebSocket again every settings.backgroundRetry seconds (and as soon as polling sees the server
// answer again after failures), going back to Live when one delivers `hello`.
//
// The text of the task the page shows (getLastSegment(id) is not null for it) comes with its
// subscription: `last_segment` says which segment the page has last, so a reconnect gets exactly
// the ones after it; while polling, GET /api/tasks/{id}/segments?after=N&wait=25 does the same.

import { TERMINAL } from "./stages.js";

const CONNECT_TIMEOUT_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;
const MAX_LONG_POLLS = 3; // browsers allow 6 connections per host; keep some for everything else
const SHORT_POLL_MS = 5_000;
// "Reconnect immediately" still waits until this long after the previous attempt began, so a
// server or proxy that accepts and then drops every socket is not hammered in a tight loop.
const MIN_ATTEMPT_GAP_S = 1;
// Connection attempts remembered for the browser tests and for a person debugging from the
// console (window.__transcriber.attempts): only the last ones, so a tab open for weeks keeps no
// more than this.
const ATTEMPT_LOG = 50;
// A server that restarts closes every socket with 1001 (going away): each page waits a random
// time in this window before its first attempt, so a thousand tabs do not come back in the
// same millisecond (full jitter; bench/bench_reconnect.py measures the spread).
const GOING_AWAY = 1001;
const GOING_AWAY_SPREAD_MS = 3_000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class Connection {
  constructor({
    api,
    settings,
    getSeq,
    onSnapshot,
    onChange,
    onGone,
    onError = () => {},
    getLastSegment = () => null,
    onSegments = () => {},
    onSegmentsFinal = () => {},
  }) {
    this.api = api;
    this.settings = settings;
    this.getSeq = getSeq;
    // The text: the last segment the page holds of a task (null: it wants no text of it), new
    // segments (id, segments), and word that the final transcript is there (id).
    this.getLastSegment = getLastSegment;
    this.onSegments = onSegments;
    this.onSegmentsFinal = onSegmentsFinal;
    this.onSnapshot = onSnapshot;
    this.onChange = onChange;
    this.onGone = onGone;
    this.onError = onError;
    this.spreadNext = false;
    this.state = "connecting";
    this.mode = "live";
    // Every task the page shows, subscribed so that a deletion elsewhere reaches it; the value
    // says whether it still changes (not finished), the only ones polled when live updates fail.
    this.watched = new Map();
    // The last ATTEMPT_LOG attempts: {n, at, ended: seconds since page load, kind, outcome}.
    this.attempts = [];
    this.attemptCount = 0;
    this.ws = null;
    this.attempt = null;
    this.live = false; // the current socket has delivered hello
    this.failures = 0;
    this.heartbeat = 30;
    this.timers = { retry: null, background: null, open: null, dead: null, probe: null };
    this.pollers = new Map();
    this.textPollers = new Map();
    this.longPolls = 0;
    this.pollFailing = false;
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow("online"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow("visible");
    });
    this.setState("connecting");
    this.connect("initial");
  }

  // -- watched tasks ---------------------------------------------------------------------------

  watch(id, changing = true) {
    const known = this.watched.has(id);
    this.watched.set(id, changing);
    if (!changing) this.stopPoller(id);
    if (known) return;
    if (this.live) this.subscribe(id);
    else if (this.mode === "polling" && changing) this.startPoller(id);
  }

  unwatch(id) {
    if (!this.watched.delete(id)) return;
    if (this.live) this.send({ type: "unsubscribe", task_id: id });
    this.stopPoller(id);
    this.stopTextPoller(id);
  }

  stopPoller(id) {
    this.pollers.get(id)?.abort();
    this.pollers.delete(id);
  }

  subscribe(id) {
    // The answer is always the latest snapshot; it is applied only if newer than the one shown.
    // With last_segment, the text follows: the segments after that one, then each new one.
    const message = { type: "subscribe", task_id: id };
    const last = this.getLastSegment(id);
    if (Number.isInteger(last)) message.last_segment = Math.max(-1, last);
    this.send(message);
  }

  // The page started or stopped wanting a task's text, or holds less of it than before (a new
  // run sends some again): subscribe anew, or poll from the last segment held.
  refreshText(id) {
    if (!this.watched.has(id)) return;
    if (this.live) {
      this.subscribe(id);
      return;
    }
    this.stopTextPoller(id);
    if (this.mode === "polling") this.startTextPoller(id);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  // -- the socket ------------------------------------------------------------------------------

  // Reconnect at once (Reconnect button, `online`, a tab that became visible).
  reconnectNow(kind) {
    if (this.ws) {
      if (this.live) this.probe();
      return;
    }
    this.clearTimer("retry");
    this.clearTimer("background");
    this.setState("connecting");
    this.connect(kind);
  }

  connect(kind) {
    if (this.ws) return;
    this.clearTimer("retry");
    this.attemptCount += 1;
    this.attempt = { n: this.attemptCount, at: performance.now() / 1000, kind, outcome: "pending" };
    this.attempts.push(this.attempt);
    if (this.attempts.length > ATTEMPT_LOG) this.attempts.shift();
    const ws = new WebSocket(this.api.wsUrl("/api/ws"));
    this.ws = ws;
    this.live = false;
    this.timers.open = setTimeout(() => this.drop(ws, "timeout"), CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      this.clearTimer("open");
      this.armDeadTimer();
    };
    ws.onmessage = (event) => this.message(ws, event);
    ws.onclose = (event) => this.drop(ws, event.code === GOING_AWAY ? "going away" : "closed");
  }

  message(ws, event) {
    if (ws !== this.ws) return;
    this.armDeadTimer();
    this.clearTimer("probe");
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === "hello") this.hello(msg);
    else if (msg.type === "task" && msg.task) this.onSnapshot(msg.task);
    else if (msg.type === "segments" && Array.isArray(msg.segments)) {
      this.onSegments(msg.task_id, msg.segments);
    } else if (msg.type === "segments_final") this.onSegmentsFinal(msg.task_id);
    else if (msg.type === "deleted" && msg.task_id) this.gone(msg.task_id);
    else if (msg.type === "error" && msg.error) this.refused(msg.error);
  }

  gone(id) {
    this.unwatch(id);
    this.onGone(id);
  }

  // An error frame: a task deleted while this page was away is gone; anything else is shown.
  refused(error) {
    if (error.code === "UNKNOWN_TASK" && error.task_id && this.watched.has(error.task_id)) {
      this.gone(error.task_id);
      return;
    }
    this.onError(error);
  }

  hello(msg) {
    this.live = true;
    this.attempt.outcome = "hello";
    this.failures = 0;
    if (typeof msg.heartbeat_s === "number" && msg.heartbeat_s > 0) {
      this.heartbeat = msg.heartbeat_s;
    }
    this.armDeadTimer();
    this.clearTimer("background");
    this.stopPolling();
    this.setState("connected");
    this.setMode("live");
    for (const id of this.watched.keys()) this.subscribe(id);
  }

  // Dead when nothing arrives for two heartbeats and 5 s.
  armDeadTimer() {
    this.clearTimer("dead");
    const ws = this.ws;
    this.timers.dead = setTimeout(() => this.drop(ws, "dead"), (2 * this.heartbeat + 5) * 1000);
  }

  // After sleep or a network change the socket may be dead without knowing it: ask.
  probe() {
    if (this.timers.probe) return;
    const ws = this.ws;
    this.send({ type: "ping" });
    this.timers.probe = setTimeout(() => this.drop(ws, "no pong"), PROBE_TIMEOUT_MS);
  }

  drop(ws, reason) {
    if (ws !== this.ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.close();
    for (const name of ["open", "dead", "probe"]) this.clearTimer(name);
    this.ws = null;
    const wasLive = this.live;
    this.live = false;
    this.attempt.outcome = wasLive ? `lost (${reason})` : `failed (${reason})`;
    this.attempt.ended = performance.now() / 1000;
    if (wasLive) {
      this.failures = 0;
      this.spreadNext = reason === "going away";
      this.scheduleRetry();
      return;
    }
    this.failures += 1;
    if (this.mode === "polling") {
      this.setState("disconnected");
      this.scheduleBackground();
    } else {
      this.scheduleRetry();
    }
  }

  scheduleRetry() {
    const { backoff, jitter } = this.settings;
    if (this.failures >= backoff.length) {
      this.fallBack();
      return;
    }
    this.setState("connecting");
    let delay = backoff[this.failures] * 1000 * (1 + Math.random() * jitter);
    const sinceLast = performance.now() - this.attempt.at * 1000;
    if (this.failures === 0) delay = Math.max(delay, MIN_ATTEMPT_GAP_S * 1000 - sinceLast);
    if (this.spreadNext) delay = Math.max(delay, Math.random() * GOING_AWAY_SPREAD_MS);
    this.spreadNext = false;
    this.timers.retry = setTimeout(() => {
      this.timers.retry = null;
      this.connect("reconnect");
    }, delay);
  }

  fallBack() {
    this.setState("disconnected");
    this.setMode("polling");
    for (const [id, changing] of this.watched) {
      if (changing) this.startPoller(id);
      this.startTextPoller(id);
    }
    this.scheduleBackground();
  }

  scheduleBackground() {
    this.clearTimer("background");
    this.timers.background = setTimeout(() => {
      this.timers.background = null;
      this.connect("background");
    }, this.settings.backgroundRetry * 1000);
  }

  clearTimer(name) {
    clearTimeout(this.timers[name]);
    this.timers[name] = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onChange(this.state, this.mode, !this.pollFailing);
  }

  setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    if (mode === "live") this.pollFailing = false;
    this.onChange(this.state, this.mode, !this.pollFailing);
  }

  // -- polling ---------------------------------------------------------------------------------

  startPoller(id) {
    if (this.pollers.has(id)) return;
    const controller = new AbortController();
    this.pollers.set(id, controller);
    this.poll(id, controller.signal).finally(() => {
      if (this.pollers.get(id) === controller) this.pollers.delete(id);
    });
  }

  stopPolling() {
    for (const controller of this.pollers.values()) controller.abort();
    this.pollers.clear();
    for (const controller of this.textPollers.values()) controller.abort();
    this.textPollers.clear();
  }

  startTextPoller(id) {
    if (this.textPollers.has(id) || !Number.isInteger(this.getLastSegment(id))) return;
    const controller = new AbortController();
    this.textPollers.set(id, controller);
    this.pollText(id, controller.signal).finally(() => {
      if (this.textPollers.get(id) === controller) this.textPollers.delete(id);
    });
  }

  stopTextPoller(id) {
    this.textPollers.get(id)?.abort();
    this.textPollers.delete(id);
  }

  // The text while polling: each answer holds the segments after the last one the page has
  // (the server answers as soon as one is stored), until the final transcript is there or the
  // task has stopped. A gone task is the snapshot poller's to report.
  async pollText(id, signal) {
    let pause = 1000;
    while (!signal.aborted) {
      const last = this.getLastSegment(id);
      if (!Number.isInteger(last)) return;
      const long = this.longPolls < MAX_LONG_POLLS;
      if (long) this.longPolls += 1;
      const wait = long ? this.settings.pollWait : 0;
      let page = null;
      let error = null;
      try {
        const after = Math.max(-1, last);
        page = await this.api.get(`/api/tasks/${id}/segments?after=${after}&wait=${wait}`, {
          signal,
        });
      } catch (exc) {
        error = exc;
      }
      if (long) this.longPolls -= 1;
      if (signal.aborted) return;
      if (error && error.status === 404) return;
      if (error) {
        await sleep(pause, signal);
        pause = Math.min(pause * 2, 10_000);
        continue;
      }
      pause = 1000;
      if (page.final) {
        this.onSegmentsFinal(id);
        return;
      }
      const fresh = page.segments || [];
      if (fresh.length) {
        this.onSegments(id, fresh);
        // Segments that did not move the page on (a gap before them): ask again later, not at once.
        if (this.getLastSegment(id) === last) await sleep(SHORT_POLL_MS, signal);
      } else if (TERMINAL.has(page.stage)) {
        return;
      } else if (!long) {
        await sleep(SHORT_POLL_MS, signal);
      }
    }
  }

  async poll(id, signal) {
    let pause = 1000;
    while (!signal.aborted) {
      const long = this.longPolls < MAX_LONG_POLLS;
      if (long) this.longPolls += 1;
      const wait = long ? this.settings.pollWait : 0;
      const since = this.getSeq(id) || 0;
      let snapshot = null;
      let error = null;
      try {
        snapshot = await this.api.get(`/api/tasks/${id}?wait=${wait}&since=${since}`, { signal });
      } catch (exc) {
        error = exc;
      }
      if (long) this.longPolls -= 1;
      if (signal.aborted) return;
      if (error && error.status === 404) {
        this.gone(id);
        return;
      }
      this.reachable(!error);
      if (error) {
        await sleep(pause, signal);
        pause = Math.min(pause * 2, 10_000);
        continue;
      }
      pause = 1000;
      this.onSnapshot(snapshot);
      if (!long) await sleep(SHORT_POLL_MS, signal);
    }
  }

  // Polling that works again after failures means the server is back: try the socket now.
  reachable(ok) {
    if (ok === !this.pollFailing) return;
    this.pollFailing = !ok;
    this.onChange(this.state, this.mode, ok);
    if (!ok) return;
    if (this.mode === "polling" && !this.ws) {
      this.clearTimer("background");
      this.connect("background");
    }
  }
}
