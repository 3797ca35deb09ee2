// tgwatch dashboard: plain ES module, no build step. Works in a desktop browser (admin token)
// and as the Telegram Mini App (initData from Telegram, theme colours from Telegram).
// Data: the /api endpoints (Bearer token, or `tma <initData>` for Mini App admins) and /ws.

const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---- who we are -------------------------------------------------------------------------
const fragment = new URLSearchParams(location.hash.slice(1));
const initData = fragment.get("tgWebAppData") || "";
const miniApp = initData !== "";
let token = "";
if (!miniApp) {
  token = fragment.get("token") || localStorage.getItem("tgwatch.token") || "";
  if (fragment.get("token")) {
    localStorage.setItem("tgwatch.token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
}
const miniAppUser = (() => {
  try { return JSON.parse(new URLSearchParams(initData).get("user") || "null"); } catch { return null; }
})();

const state = {
  board: new Map(), // tracked user id -> row
  selected: null,
  channels: new Map(), // channel id -> channel
  feed: new Map(), // `${channel}:${message}` -> message
  can: { broadcast: false, pin: false },
  serviceOffsetMs: 0, // service clock minus this browser's clock, at the last board load
  boardLoaded: false, // the admin API answered (Mini App users below admin only get /ws)
};

// ---- Telegram Mini App: script, theme, viewport -----------------------------------------------
function applyTheme(theme) {
  if (!theme) return;
  const root = document.documentElement;
  root.classList.add("tg");
  const map = {
    bg_color: "--tg-bg", secondary_bg_color: "--tg-secondary-bg", text_color: "--tg-text",
    hint_color: "--tg-hint", link_color: "--tg-link", button_color: "--tg-button",
    button_text_color: "--tg-button-text",
  };
  for (const [key, variable] of Object.entries(map)) {
    if (theme[key]) root.style.setProperty(variable, theme[key]);
  }
}

if (miniApp) {
  try { applyTheme(JSON.parse(fragment.get("tgWebAppThemeParams") || "null")); } catch { /* no theme */ }
  const script = el("script", { src: "https://telegram.org/js/telegram-web-app.js", async: true });
  script.addEventListener("load", () => {
    const app = window.Telegram && window.Telegram.WebApp;
    if (!app) return;
    app.ready();
    app.expand();
    applyTheme(app.themeParams);
    app.onEvent("themeChanged", () => applyTheme(app.themeParams));
  });
  document.head.append(script);
}

// ---- API ----------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  headers.Authorization = miniApp ? `tma ${initData}` : `Bearer ${token}`;
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    const message = (body && body.error && body.error.message) || `${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

// ---- small helpers ------------------------------------------------------------------------------
const pad = (n) => String(n).padStart(2, "0");
function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const now = new Date(Date.now() + state.serviceOffsetMs);
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return date.toDateString() === now.toDateString()
    ? time
    : `${date.getDate()} ${date.toLocaleString(undefined, { month: "short" })} ${time}`;
}
function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}
const nameOf = (u) => (u.username ? `@${u.username}` : u.first_name || `id ${u.telegram_user_id ?? "?"}`);

function toast(text, kind = "") {
  const node = el("div", { class: `toast ${kind}` }, text);
  $("toasts").append(node);
  setTimeout(() => node.remove(), 5000);
  if (miniApp && kind === "error" && window.Telegram?.WebApp?.HapticFeedback) {
    window.Telegram.WebApp.HapticFeedback.notificationOccurred("error");
  }
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// ---- status strip -----------------------------------------------------------------------------
function renderStatus(data) {
  const figures = [
    ["up", duration(data.uptime_seconds)],
    ["accounts", `${data.accounts_active} active` + (data.accounts_banned ? ` · ${data.accounts_banned} banned` : "")],
    ["tracked", data.tracked_users],
    ["online now", data.online_now],
    ["messages", data.messages_processed],
    ["webhooks", `${data.webhooks_delivered} ok · ${data.webhooks_failed} failed`],
    ["alerts", data.alerts_sent],
    ["live clients", data.clients],
  ];
  $("status").replaceChildren(...figures.map(([label, value]) =>
    el("div", { "data-figure": label }, el("dt", {}, label), el("dd", {}, value))));
}

// ---- board --------------------------------------------------------------------------------------
async function loadBoard() {
  const body = await api("/api/dashboard/board");
  state.serviceOffsetMs = new Date(body.service_time).getTime() - Date.now();
  state.board = new Map(body.items.map((item) => [item.id, item]));
  state.boardLoaded = true;
  renderBoard();
}

function renderBoard(flashId) {
  const rows = [...state.board.values()].sort((a, b) =>
    (b.online - a.online) || (b.session_open - a.session_open) ||
    String(b.last_seen || "").localeCompare(String(a.last_seen || "")));
  const online = rows.filter((r) => r.online).length;
  $("board-summary").textContent = `${online} online of ${rows.length}`;
  $("board-empty").hidden = rows.length > 0;
  $("board-body").replaceChildren(...rows.map((row) => {
    const kind = row.online ? "online" : row.session_open ? "away" : "offline";
    const now = row.online
      ? `online since ${clock(row.online_since || row.last_seen)}`
      : row.last_seen ? `last seen ${clock(row.last_seen)}` : row.status || "not seen yet";
    return el("tr", {
      "data-user": row.id, "data-state": kind,
      class: [row.id === state.selected ? "selected" : "", row.id === flashId ? "flash" : ""].join(" ").trim(),
      onclick: () => selectUser(row.id),
    },
    el("td", {}, el("span", { class: `dot ${kind}`, title: kind })),
    el("td", {}, nameOf(row), row.first_name && row.username ? el("small", {}, ` ${row.first_name}`) : null),
    el("td", { class: "state" }, now));
  }));
}

let boardReload = null;
function onPresence(event) {
  const data = event.data || {};
  const user = data.user || {};
  const row = state.board.get(user.tracked_user_id);
  if (!state.boardLoaded) return;
  if (!row) { // someone new: read the board again, once
    clearTimeout(boardReload);
    boardReload = setTimeout(() => loadBoard().catch(() => {}), 300);
    return;
  }
  const session = data.session || {};
  if (event.type === "user_online") {
    Object.assign(row, { online: true, session_open: true, status: "online",
      online_since: session.started_at, last_seen: session.last_online_at || data.observed_at });
  } else if (event.type === "user_offline") {
    Object.assign(row, { online: false, status: "offline", last_seen: data.was_online || row.last_seen });
  } else if (event.type === "session_closed") {
    Object.assign(row, { online: false, session_open: false, online_since: null,
      last_seen: session.last_online_at || row.last_seen });
  }
  renderBoard(row.id);
  if (row.id === state.selected) loadDetail(row.id).catch(() => {});
}

// ---- one person: timeline and hour-of-week heatmap ---------------------------------------------
function selectUser(id) {
  state.selected = id;
  renderBoard();
  loadDetail(id).catch((error) => toast(`Cannot load the person: ${error.message}`, "error"));
}

async function loadDetail(id) {
  const row = state.board.get(id);
  const [sessions, stats] = await Promise.all([
    api(`/api/tracked-users/${id}/sessions?hours=672`),
    api(`/api/tracked-users/${id}/stats?hours=168`),
  ]);
  $("detail").hidden = false;
  $("detail-title").textContent = row ? nameOf(row) : id;
  $("detail-stats").textContent =
    `7 days: online ${duration(stats.online_seconds)} in ${stats.session_count} sessions` +
    (stats.longest_session_seconds ? `, longest ${duration(stats.longest_session_seconds)}` : "");
  const now = Date.now() + state.serviceOffsetMs;
  const spans = (sessions.sessions || []).map((s) => [
    new Date(s.started_at).getTime(),
    s.ended_at ? new Date(s.ended_at).getTime() : Math.max(new Date(s.last_online_at).getTime(), Math.min(now, new Date(s.started_at).getTime() + s.duration_seconds * 1000)),
  ]);
  renderTimeline(spans, now);
  renderHeatmap(spans);
}

function renderTimeline(spans, now) {
  const day = 86400000;
  const today = new Date(now); today.setHours(0, 0, 0, 0);
  const rows = [];
  for (let i = 6; i >= 0; i--) {
    const start = today.getTime() - i * day, end = start + day;
    const bar = el("div", { class: "bar" });
    for (const [from, to] of spans) {
      const a = Math.max(from, start), b = Math.min(to, end);
      if (b <= a) continue;
      const segment = el("span", { title: `${clock(new Date(a).toISOString())}–${clock(new Date(b).toISOString())}` });
      segment.style.left = `${((a - start) / day) * 100}%`;
      segment.style.width = `${((b - a) / day) * 100}%`;
      bar.append(segment);
    }
    const label = new Date(start).toLocaleDateString(undefined, { weekday: "short" });
    rows.push(el("div", {}, label), bar);
  }
  $("timeline").replaceChildren(...rows);
}

function renderHeatmap(spans) {
  const seconds = Array.from({ length: 7 }, () => new Array(24).fill(0));
  const hour = 3600000;
  for (const [from, to] of spans) {
    let t = from;
    while (t < to) {
      const at = new Date(t);
      const next = new Date(at); next.setMinutes(0, 0, 0); next.setTime(next.getTime() + hour);
      const until = Math.min(next.getTime(), to);
      seconds[(at.getDay() + 6) % 7][at.getHours()] += (until - t) / 1000;
      t = until;
    }
  }
  const max = Math.max(1, ...seconds.flat());
  const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const cells = [el("div", {})];
  for (let h = 0; h < 24; h++) cells.push(el("div", { class: "hour" }, h % 6 === 0 ? h : ""));
  days.forEach((name, d) => {
    cells.push(el("div", {}, name));
    for (let h = 0; h < 24; h++) {
      const value = seconds[d][h];
      const cell = el("div", { class: "cell", title: `${name} ${pad(h)}:00 — ${duration(value)} online` });
      if (value > 0) cell.style.background = `rgba(34, 160, 107, ${0.15 + 0.85 * (value / max)})`;
      cells.push(cell);
    }
  });
  $("heatmap").replaceChildren(...cells);
}

// ---- channel feed -------------------------------------------------------------------------------
async function loadFeed() {
  const channels = await api("/api/channels?limit=100");
  state.channels = new Map(channels.items.map((c) => [c.id, c]));
  const active = channels.items.filter((c) => c.status === "active").slice(0, 8);
  const pages = await Promise.all(active.map((c) =>
    api(`/api/channels/${c.id}/messages?limit=15`).catch(() => ({ items: [] }))));
  for (const page of pages) for (const m of page.items) state.feed.set(`${m.channel_id}:${m.message_id}`, m);
  renderFeed();
}

function onMessage(event) {
  const d = event.data || {};
  const key = `${d.channel_id}:${d.message_id}`;
  const known = state.feed.get(key) || {};
  state.feed.set(key, {
    ...known, ...d,
    is_deleted: event.type === "deleted_message" || known.is_deleted || false,
    edited: event.type === "edited_message" || known.edited,
  });
  if (d.channel_id && !state.channels.has(d.channel_id)) {
    state.channels.set(d.channel_id, { id: d.channel_id, username: d.channel_username });
  }
  renderFeed(key);
}

function renderFeed() {
  const items = [...state.feed.values()]
    .sort((a, b) => String(b.date).localeCompare(String(a.date)))
    .slice(0, 60);
  $("feed-empty").hidden = items.length > 0;
  $("feed").replaceChildren(...items.map((m) => {
    const channel = state.channels.get(m.channel_id) || {};
    const edited = m.edited || (m.version || 1) > 1;
    return el("li", { class: m.is_deleted ? "deleted" : "", "data-message": `${m.channel_id}:${m.message_id}` },
      el("div", { class: "meta" },
        el("strong", {}, channel.title || (channel.username ? `@${channel.username}` : m.channel_username ? `@${m.channel_username}` : "channel")),
        el("span", {}, clock(m.date)),
        edited ? el("span", { class: "badge edited" }, "edited") : null,
        m.is_deleted ? el("span", { class: "badge deleted" }, "deleted") : null,
        m.media_type ? el("span", { class: "badge" }, m.media_type) : null),
      el("div", { class: "text" }, (m.text || "").slice(0, 400) || (m.media_type ? "" : "(empty)")));
  }));
}

// ---- accounts and QR login ----------------------------------------------------------------------
// The account nodes of the supervision tree (`GET /api/supervision`), by account id.
function supervisedAccounts(tree) {
  const found = new Map();
  const walk = (node) => {
    if (node.kind === "account") found.set(node.id, node);
    (node.children || []).forEach(walk);
  };
  walk(tree);
  return found;
}

async function loadAccounts() {
  const [accounts, health, tree] = await Promise.all([
    api("/api/accounts?limit=1000"),
    fetch("/api/health").then((r) => r.json()),
    api("/api/supervision"),
  ]);
  const links = new Map((health.account_states || []).map((a) => [a.id, a]));
  const supervised = supervisedAccounts(tree);
  $("accounts-body").replaceChildren(...accounts.items.map((a) => {
    const link = links.get(a.id) || {};
    const connected = link.connected === true ? "connected" : link.running ? "connecting" : "stopped";
    return el("tr", { "data-account": a.label },
      el("td", {}, a.label, a.username ? el("small", {}, ` @${a.username}`) : null),
      el("td", {}, el("span", { class: `badge ${a.status}`, title: a.status_reason || "" }, a.status)),
      el("td", {}, a.is_authorized ? connected : el("span", { class: "badge limited" }, "logged out"),
        link.pushes === "stopped"
          ? el("span", { class: "badge limited", title: "status pushes go to another client on this account's session" }, "pushes elsewhere")
          : null),
      el("td", {}, `${a.targets_count}/${a.max_targets} · ${a.channels_count}/${a.max_channels}`),
      restartsCell(supervised.get(a.id)),
      el("td", {}, el("button", { type: "button", class: "quiet", onclick: () => startQr(a) }, "QR login")));
  }));
}

// How often the account's actor was restarted, and why last (the cell's title).
function restartsCell(node) {
  if (!node) return el("td", { class: "restarts" }, "–");
  const why = node.last_reason ? `last: ${node.last_reason} (${node.last_restart_at})` : "never restarted";
  return el("td", { class: "restarts", title: why }, String(node.restarts),
    node.state === "parked" ? el("span", { class: "badge banned", title: why }, "parked") : null);
}

let qrTimer = null;
let qrAccount = null;
// `tgwatch demo` serves a route that scans the QR code with the account's own phone in its
// sandbox; the document lists it only there, so it is what tells the page it runs in the demo.
const demoScan = fetch("/api/openapi.json")
  .then((r) => r.json())
  .then((document) => Boolean(document.paths && document.paths["/api/accounts/{id}/login/qr/demo-scan"]))
  .catch(() => false);
function stopQr() {
  clearInterval(qrTimer);
  qrTimer = null;
  qrAccount = null;
  $("qr").hidden = true;
}

async function startQr(account) {
  stopQr();
  qrAccount = account;
  $("qr").hidden = false;
  $("qr-account").textContent = account.label;
  $("qr-password").hidden = true;
  $("qr-demo-scan").hidden = !(await demoScan);
  $("qr-state").textContent = "asking Telegram for a code…";
  try {
    await showQrCode(account);
  } catch (error) {
    $("qr-state").textContent = `Cannot start a QR login: ${error.message}`;
    return;
  }
  qrTimer = setInterval(() => pollQr(account).catch((error) => { $("qr-state").textContent = error.message; }), 2000);
}

async function showQrCode(account) {
  const qr = await api(`/api/accounts/${account.id}/login/qr`);
  $("qr-image").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qr.svg)}`;
  $("qr-image").dataset.expiresAt = qr.expires_at;
  $("qr-state").textContent = `waiting for the scan (code valid until ${clock(qr.expires_at)})`;
}

async function pollQr(account) {
  if (qrAccount !== account) return;
  const status = await api(`/api/accounts/${account.id}/login/status`);
  if (status.state === "logged_in" || status.is_authorized && status.state !== "qr_pending") {
    $("qr-state").textContent = "logged in";
    $("qr-demo-scan").hidden = true;
    toast(`${account.label} is logged in`);
    clearInterval(qrTimer);
    loadAccounts().catch(() => {});
  } else if (status.state === "qr_expired") {
    await showQrCode(account);
  } else if (status.state === "password_needed") {
    $("qr-state").textContent = `scanned: the account has a 2FA password${status.password_hint ? ` (hint: ${status.password_hint})` : ""}`;
    $("qr-password").hidden = false;
  } else if (status.last_error) {
    $("qr-state").textContent = status.last_error;
  }
}

$("qr-close").addEventListener("click", stopQr);
$("qr-demo-scan").addEventListener("click", async () => {
  if (!qrAccount) return;
  try {
    await api(`/api/accounts/${qrAccount.id}/login/qr/demo-scan`, { method: "POST" });
    $("qr-state").textContent = "scanned with the demo phone…";
    await pollQr(qrAccount);
  } catch (error) {
    $("qr-state").textContent = error.message;
  }
});
$("qr-password").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!qrAccount) return;
  try {
    await api(`/api/accounts/${qrAccount.id}/login/password`, {
      method: "POST", body: JSON.stringify({ password: $("qr-password-input").value }),
    });
    $("qr-password-input").value = "";
    $("qr-password").hidden = true;
    $("qr-state").textContent = "password accepted";
  } catch (error) {
    $("qr-state").textContent = error.message;
  }
});

// ---- webhooks -----------------------------------------------------------------------------------
async function loadWebhooks() {
  const hooks = await api("/api/webhooks?limit=1000");
  $("webhooks-body").replaceChildren(...hooks.items.map((w) => el("tr", {},
    el("td", {}, w.name || new URL(w.url).host, el("br"), el("small", {}, w.url)),
    el("td", {}, el("span", { class: `badge ${w.status}`, title: w.status_reason || "" }, w.status)),
    el("td", {}, `${w.failure_count}` + (w.consecutive_failed_messages ? ` (${w.consecutive_failed_messages} in a row)` : "")),
    el("td", {}, el("button", { type: "button", class: "quiet", onclick: () => showFailures(w) }, "failures")))));
}

async function showFailures(hook) {
  const page = await api(`/api/webhooks/${hook.id}/deliveries?success=false&order=desc&limit=10`);
  const box = $("deliveries");
  box.hidden = false;
  box.replaceChildren(el("h3", {}, `Failed deliveries of ${hook.name || hook.url}`),
    page.items.length === 0 ? el("p", { class: "hint" }, "none")
      : el("ol", { class: "alert-list" }, page.items.map((d) => el("li", {},
        `${clock(d.completed_at)} — attempt ${d.attempt}: `,
        d.status_code ? `HTTP ${d.status_code}` : "", d.error ? ` ${d.error}` : ""))));
}

// ---- alerts, broadcast --------------------------------------------------------------------------
function onAlert(event) {
  const text = (event.data && event.data.message) || event.type;
  $("alerts-empty").hidden = true;
  $("alerts").prepend(el("li", {}, `${clock(event.timestamp)} ${text}`));
  toast(text, "error");
}

let socket = null;
function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) { toast("Not connected", "error"); return; }
  socket.send(JSON.stringify(message));
}

let pinNext = false;
for (const button of document.querySelectorAll("#broadcast-form button")) {
  button.addEventListener("click", () => { pinNext = button.dataset.pin === "true"; });
}
$("broadcast-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const thread = Number($("broadcast-thread").value) || undefined;
  send({ action: pinNext ? "send_and_pin" : "broadcast", text: $("broadcast-text").value, thread_id: thread });
});
$("pin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const thread = Number($("broadcast-thread").value) || undefined;
  send({ action: "pin", data: { messageId: Number($("pin-id").value) }, thread_id: thread });
});

// ---- the live connection ------------------------------------------------------------------------
let retry = 1000;
function reconnectLater() {
  setTimeout(connect, retry);
  retry = Math.min(retry * 2, 30000);
}
async function connect() {
  const query = new URLSearchParams({ user_id: String(miniAppUser ? miniAppUser.id : 0) });
  if (miniApp) {
    query.set("init_data", initData);
    if (miniAppUser && miniAppUser.username) query.set("username", miniAppUser.username);
  } else {
    // A single-use ticket, not the token: a URL lands in every proxy's access log.
    try {
      query.set("ticket", (await api("/api/live/ticket", { method: "POST" })).ticket);
    } catch {
      reconnectLater();
      return;
    }
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws?${query}`);
  socket.addEventListener("open", () => {
    retry = 1000;
    $("conn").textContent = "live";
    $("conn").className = "pill on";
  });
  socket.addEventListener("message", (message) => {
    let frame;
    try { frame = JSON.parse(message.data); } catch { return; }
    switch (frame.type) {
      case "hello":
        state.can = frame.can || {};
        $("broadcast").hidden = !(state.can.broadcast || state.can.pin);
        break;
      case "status": renderStatus(frame.data); break;
      case "presence": onPresence(frame.event); break;
      case "message": onMessage(frame.event); break;
      case "alert": onAlert(frame.event); break;
      case "toast": toast(frame.title); break;
      case "error": toast(frame.message || frame.code, "error"); break;
      default: break;
    }
  });
  socket.addEventListener("close", () => {
    $("conn").textContent = "offline";
    $("conn").className = "pill off";
    reconnectLater();
  });
}
setInterval(() => { if (socket && socket.readyState === WebSocket.OPEN) send({ type: "ping" }); }, 25000);

// ---- start --------------------------------------------------------------------------------------
function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token-input").value.trim();
  localStorage.setItem("tgwatch.token", token);
  start();
});

async function start() {
  try {
    await loadBoard();
  } catch (error) {
    if (!miniApp && error.status === 401) { showLogin(token ? "The token was refused." : ""); return; }
    if (miniApp && (error.status === 401 || error.status === 403)) {
      // Not an admin: the live status and events still come over /ws.
      notice("The full board is for admins; live figures below.");
      $("login").hidden = true;
      connect();
      return;
    }
    notice(`Cannot reach the service: ${error.message}`);
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  notice("");
  connect();
  const quiet = (promise) => promise.catch((error) => console.warn(error));
  quiet(loadFeed());
  quiet(loadAccounts());
  quiet(loadWebhooks());
  setInterval(() => { quiet(loadBoard()); quiet(loadAccounts()); quiet(loadWebhooks()); }, 60000);
}

if (!miniApp && !token) showLogin(""); else start();
