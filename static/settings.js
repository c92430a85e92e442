// Page settings, read once from the page URL or from window.TRANSCRIBER_SETTINGS.
//
// URL query parameters (also usable by people behind unusual proxies; the access token is
// never one of them: the page signs in with a form and a session cookie, see api.js):
//   ?ws_backoff=0,1,2,4,8  seconds to wait before each reconnect attempt after a lost
//                        WebSocket; the number of entries is the number of attempts before the
//                        page falls back to polling (default 0,1,2,4,8)
//   ?ws_jitter=0.1       up to this fraction is added at random to each wait (default 0.1)
//   ?ws_retry=30         seconds between background WebSocket attempts while polling (30)
// A script that runs before app.js may instead set
//   window.TRANSCRIBER_SETTINGS = {backoff: [0, 1, 2, 4, 8], jitter, backgroundRetry}.

const DEFAULTS = Object.freeze({
  backoff: [0, 1, 2, 4, 8],
  jitter: 0.1,
  backgroundRetry: 30,
  pollWait: 25,
});

function numberList(raw) {
  if (raw == null || raw === "") return undefined;
  const values = raw.split(",").map((part) => Number(part.trim()));
  return values.every((v) => Number.isFinite(v) && v >= 0) && values.length ? values : undefined;
}

function number(raw) {
  if (raw == null || raw === "") return undefined;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

export function readSettings(search = window.location.search, given = window.TRANSCRIBER_SETTINGS) {
  const params = new URLSearchParams(search);
  const win = given || {};
  return Object.freeze({
    backoff: numberList(params.get("ws_backoff")) ?? win.backoff ?? DEFAULTS.backoff,
    jitter: number(params.get("ws_jitter")) ?? win.jitter ?? DEFAULTS.jitter,
    backgroundRetry:
      number(params.get("ws_retry")) ?? win.backgroundRetry ?? DEFAULTS.backgroundRetry,
    pollWait: win.pollWait ?? DEFAULTS.pollWait,
  });
}
