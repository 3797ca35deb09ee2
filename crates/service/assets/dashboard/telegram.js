// tgwatch, seed 003's two pages in one: the login page (phone -> code -> 2FA password, or a QR
// code) and the main page (session info, the chats, a chat's messages) of one account. Plain
// ES module, no build step. Data: the /telegram endpoints with the admin token (the same one
// the dashboard keeps in this browser).

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

const fragment = new URLSearchParams(location.hash.slice(1));
let token = fragment.get("token") || localStorage.getItem("tgwatch.token") || "";
if (fragment.get("token")) {
  localStorage.setItem("tgwatch.token", token);
  history.replaceState(null, "", location.pathname + location.search);
}
let account = new URLSearchParams(location.search).get("account") || "";
let qrTimer = null;

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Calls a /telegram (or /api) endpoint for the chosen account. */
async function api(path, options = {}) {
  const url = new URL(path, location.origin);
  if (account && path.startsWith("/telegram/")) url.searchParams.set("account", account);
  const headers = { Authorization: `Bearer ${token}` };
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { ...options, headers });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error && body.error.message) || `${response.status}`);
  }
  return body;
}
const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });

function showError(error) {
  $("tg-error").textContent = error ? String(error.message || error) : "";
  $("tg-error").hidden = !error;
  if (error && error.status === 401) askToken();
}

function askToken() {
  for (const id of ["tg-login", "tg-main"]) $(id).hidden = true;
  $("tg-token").hidden = false;
}

async function loadAccounts() {
  const page = await api("/api/accounts?limit=1000");
  const select = $("tg-account");
  select.replaceChildren(...page.items.map((a) => el("option", { value: a.id }, a.label)));
  if (!account && page.items.length) account = page.items[0].id;
  select.value = account;
}

/** The login page or the main page, as the session stands. */
async function show() {
  clearInterval(qrTimer);
  const status = await api("/telegram/session/status");
  $("tg-token").hidden = true;
  $("tg-login").hidden = status.is_authorized;
  $("tg-main").hidden = !status.is_authorized;
  if (status.is_authorized) await showMain();
  else showLogin(status.state);
}

function showLogin(state) {
  $("tg-code-form").hidden = !(state === "code_sent" || state === "password_needed");
  $("tg-password-row").hidden = state !== "password_needed";
  $("tg-qr").hidden = true;
}

/** After a login step: the next step, or the main page once logged in. */
async function advance(status) {
  if (status.state === "password_needed") {
    $("tg-code-form").hidden = false;
    $("tg-password-row").hidden = false;
    $("tg-password-hint").hidden = !status.password_hint;
    $("tg-password-hint").textContent = status.password_hint ? `hint: ${status.password_hint}` : "";
    $("tg-password").focus();
  } else if (status.state === "logged_in" || status.state === "logging_in") {
    await waitForLogin();
  }
}

/** The account restarts on its new session: wait until it can read chats. */
async function waitForLogin() {
  for (let i = 0; i < 60; i++) {
    const status = await api("/telegram/session/status");
    if (status.state === "logged_in") return show();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return show();
}

async function showMain() {
  const [info, me] = await Promise.all([api("/telegram/session/info"), api("/telegram/user/info")]);
  const name = [me.first_name, me.last_name].filter(Boolean).join(" ");
  const rows = [
    ["name", name || "—"], ["username", me.username ? `@${me.username}` : "—"],
    ["phone", me.phone || "—"], ["Telegram id", me.telegram_id], ["DC", info.dc_id ?? "—"],
    ["logged in since", info.authorized_at || "—"],
  ];
  $("tg-session").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const chats = await api("/telegram/chats");
  $("tg-chats").replaceChildren(...chats.items.map((chat) =>
    el("li", {}, el("a", { href: "#", "data-chat-id": chat.chat_id, onclick: (e) => { e.preventDefault(); openChat(chat); } },
      chat.title || chat.username || String(chat.chat_id)), ` (${chat.kind})`)));
}

async function openChat(chat) {
  const page = await api(`/telegram/chats/${chat.chat_id}/messages`);
  $("tg-chat").hidden = false;
  $("tg-chat-title").textContent = chat.title || String(chat.chat_id);
  $("tg-messages").replaceChildren(...page.items.map((m) =>
    el("li", { "data-message-id": m.id }, el("time", {}, m.date), " ", m.text || (m.media_type ? `[${m.media_type}]` : ""))));
}

function guard(action) {
  return async (event) => {
    if (event) event.preventDefault();
    showError(null);
    try { await action(); } catch (error) { showError(error); }
  };
}

$("tg-token-form").addEventListener("submit", guard(async () => {
  token = $("tg-token-input").value.trim();
  localStorage.setItem("tgwatch.token", token);
  await start();
}));
$("tg-account").addEventListener("change", guard(async () => {
  account = $("tg-account").value;
  await show();
}));
$("tg-phone-form").addEventListener("submit", guard(async () => {
  await post("/telegram/auth/phone", { phone: $("tg-phone").value.trim() });
  showLogin("code_sent");
  $("tg-code").focus();
}));
$("tg-code-form").addEventListener("submit", guard(async () => {
  const body = { phone: $("tg-phone").value.trim() || undefined, code: $("tg-code").value.trim() };
  if ($("tg-password").value) body.password = $("tg-password").value;
  await advance(await post("/telegram/auth/verify", body));
}));
$("tg-qr-button").addEventListener("click", guard(async () => {
  const qr = await api("/telegram/auth/qr");
  $("tg-qr-image").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qr.svg)}`;
  $("tg-qr").hidden = false;
  clearInterval(qrTimer);
  qrTimer = setInterval(guard(async () => {
    const status = await api("/telegram/auth/qr/status");
    if (status.state === "qr_expired") {
      const next = await api("/telegram/auth/qr");
      $("tg-qr-image").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(next.svg)}`;
    } else if (status.state !== "qr_pending") {
      clearInterval(qrTimer);
      await advance(status);
    }
  }), 1000);
}));
$("tg-reset").addEventListener("click", guard(async () => {
  await post("/telegram/session/reset");
  await show();
}));

async function start() {
  if (!token) return askToken();
  await loadAccounts();
  await show();
}
guard(start)();
