// Entry point: wires the settings, the API client, the connection manager and the views.
// window.__transcriber is a small debug hook (the settings in force and the last connection
// attempts) that the browser tests read; see settings.js for the URL parameters that shorten the
// reconnect schedule.

import { Api } from "./api.js";
import { Connection } from "./connection.js";
import { errorBlock, h } from "./dom.js";
import { ResultView } from "./result.js";
import { SearchBox } from "./search.js";
import { readSettings } from "./settings.js";
import { STAGE, TERMINAL } from "./stages.js";
import { TaskList } from "./tasks.js";
import { UploadForm } from "./upload.js";
import { Voices } from "./voices.js";

const STATE_TEXT = {
  connecting: "Connecting",
  connected: "Connected",
  disconnected: "Disconnected",
};
const MODE_TEXT = { live: "Live", polling: "Polling" };

const $ = (id) => document.getElementById(id);

const settings = readSettings();
const api = new Api({ onUnauthorized: () => askToken() });
const announcer = $("announcer");
const voices = new Voices(api, {
  list: $("profile-list"),
  empty: $("no-profiles"),
  status: $("profiles-status"),
  onTaskChanged: () => result.reload(),
});
const result = new ResultView($("result"), api, { news: $("transcript-news"), voices });

function announce(text) {
  // A fresh node, so the same words twice in a row are announced twice.
  announcer.replaceChildren(h("p", {}, text));
}

function hashTask() {
  const match = /^#task=([0-9a-f]+)$/.exec(window.location.hash);
  return match ? match[1] : null;
}

function select(id, { focus = false } = {}) {
  tasks.select(id);
  const snap = tasks.snapshot(id);
  if (!snap) return;
  const url = `${window.location.pathname}${window.location.search}#task=${id}`;
  if (window.location.hash !== `#task=${id}`) window.history.replaceState(null, "", url);
  result.show(snap);
  if (focus) $("result").focus({ preventScroll: false });
}

function updated(snap) {
  connection.watch(snap.id, !TERMINAL.has(snap.stage));
  if (snap.id === tasks.selected) result.show(snap);
}

const tasks = new TaskList({
  list: $("task-list"),
  empty: $("no-tasks"),
  api,
  announce,
  onSelect: (id) => select(id, { focus: true }),
  onUpdate: updated,
  onRemove: (id) => {
    connection.unwatch(id);
    if (tasks.selected === id) {
      tasks.selected = null;
      result.blank();
    }
  },
});

const POLLING_NOTES = {
  true:
    "Live updates are not reaching this page, so it asks the server for changes over plain HTTP " +
    "and keeps trying to reconnect in the background.",
  false:
    "The server is not answering. The page keeps trying and catches up when it is back; " +
    "what you see may be out of date.",
};

function showConnection(state, mode, reachable = true) {
  const stateNode = $("conn-state");
  stateNode.textContent = STATE_TEXT[state];
  stateNode.dataset.state = state;
  const modeNode = $("conn-mode");
  modeNode.textContent = MODE_TEXT[mode];
  modeNode.dataset.mode = mode;
  $("reconnect").hidden = state !== "disconnected";
  $("polling-note").hidden = mode !== "polling";
  $("polling-note").textContent = POLLING_NOTES[reachable];
}

const connection = new Connection({
  api,
  settings,
  getSeq: (id) => tasks.seq(id),
  onSnapshot: (snap) => tasks.apply(snap),
  onChange: showConnection,
  onGone: (id) => tasks.remove(id),
  onError: (error) => {
    const slot = $("tasks-error");
    slot.replaceChildren(errorBlock(error, { role: "alert" }));
  },
  getLastSegment: (id) => result.lastSegment(id),
  onSegments: (id, segments) => result.addSegments(id, segments),
  onSegmentsFinal: finalText,
});
result.onText = (id) => connection.refreshText(id);

// The final transcript of the task shown is there: the complete snapshot loads it (and normally
// came first; if this page has not seen it yet, ask).
async function finalText(id) {
  result.finalText(id);
  if (id !== tasks.selected || tasks.snapshot(id)?.stage === STAGE.COMPLETE) return;
  const snap = await api.get(`/api/tasks/${id}`).catch(() => null);
  if (snap) tasks.apply(snap);
}

const PAGE_SIZE = 50;
let nextPage = null; // the cursor of the next page of older tasks
let ownerFilter = ""; // "me": an admin's own tasks only; "": everyone's
let session = null; // GET /api/session: who this page acts as

async function loadTasks({ more = false } = {}) {
  const slot = $("tasks-error");
  slot.replaceChildren();
  try {
    const after = more && nextPage ? `&before=${encodeURIComponent(nextPage)}` : "";
    const owner = ownerFilter ? `&owner=${ownerFilter}` : "";
    const page = await api.get(`/api/tasks?limit=${PAGE_SIZE}${owner}${after}`);
    for (const snap of page.tasks) tasks.apply(snap);
    nextPage = page.next;
    $("more-tasks").hidden = !nextPage;
    if (more) return;
    const wanted = hashTask();
    if (wanted && !tasks.snapshot(wanted)) tasks.apply(await api.get(`/api/tasks/${wanted}`));
    if (wanted) select(wanted);
  } catch (exc) {
    slot.append(
      errorBlock(exc, { role: "alert" }),
      h("button", { type: "button", onclick: loadTasks }, "Load the list again"),
    );
  }
}

const upload = new UploadForm({
  form: $("upload-form"),
  input: $("files"),
  drop: $("drop"),
  errors: $("upload-errors"),
  api,
  tasks,
  onCreated: (id) => select(id),
});

new SearchBox({
  form: $("search-form"),
  input: $("search"),
  results: $("search-results"),
  api,
  onOpen: async (id, start) => {
    if (!tasks.snapshot(id)) tasks.apply(await api.get(`/api/tasks/${id}`));
    result.seek(id, start);
    select(id);
  },
});

$("reconnect").addEventListener("click", () => connection.reconnectNow("manual"));
$("more-tasks").addEventListener("click", () => loadTasks({ more: true }));
window.addEventListener("hashchange", () => {
  const id = hashTask();
  if (id && id !== tasks.selected) select(id);
});

window.__transcriber = { settings, attempts: connection.attempts };

// --retention-days: say that finished tasks go, so nobody wonders where one went.
function duration(days) {
  if (days >= 1) {
    const n = Math.round(days * 10) / 10;
    return n === 1 ? "1 day" : `${n} days`;
  }
  const hours = Math.max(1, Math.round(days * 24));
  return hours === 1 ? "1 hour" : `${hours} hours`;
}

async function showRetention() {
  const health = await api.get("/api/health").catch(() => null);
  const days = health?.retention_days;
  const note = $("retention");
  note.hidden = !(typeof days === "number" && days > 0);
  if (!note.hidden) {
    note.textContent = `Finished tasks are deleted ${duration(days)} after their last change.`;
  }
}

// Who is signed in: their name, each card's owner, and for an admin the mine/everyone filter.
function showSession(state) {
  session = state;
  const named = Boolean(state?.token_required && state.signed_in && state.name);
  $("who").hidden = !named;
  $("who").textContent = named ? `Signed in as ${state.name}` : "";
  tasks.showOwner = Boolean(state?.token_required);
  $("owner-filter").hidden = !(named && state.admin);
}

$("owner-filter").addEventListener("change", (event) => {
  ownerFilter = event.target.value;
  nextPage = null;
  if (ownerFilter) tasks.keepOnly((snap) => snap.owner === session?.name);
  loadTasks();
});

let started = false;

function start() {
  $("sign-in").hidden = true;
  $("main").hidden = false;
  if (started) {
    connection.reconnectNow("signed in");
    loadTasks();
    return;
  }
  started = true;
  showConnection(connection.state, connection.mode);
  upload.start();
  connection.start();
  loadTasks();
  showRetention();
  voices.refresh();
}

function askToken() {
  $("main").hidden = true;
  $("sign-in").hidden = false;
  $("token").focus();
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const slot = $("sign-in-error");
  slot.replaceChildren();
  try {
    showSession(await api.post("/api/session", { token: $("token").value }));
    $("token").value = "";
    $("sign-out").hidden = false;
    start();
  } catch (exc) {
    slot.append(errorBlock(exc, { role: "alert" }));
  }
});

$("sign-out").addEventListener("click", async () => {
  await api.delete("/api/session").catch(() => null);
  window.location.reload();
});

async function boot() {
  // A server that is down is not a reason to sign in: start, and show it as Disconnected.
  const state = await api.get("/api/session").catch(() => null);
  showSession(state);
  $("sign-out").hidden = !state?.signed_in;
  if (state?.token_required && !state.signed_in) askToken();
  else start();
}

boot();
