/* timserver web console: plain JavaScript, no build step, nothing loaded from the internet.
 *
 * Secrets: the console token lives in this tab's sessionStorage (it came in the URL fragment,
 * which browsers never send to a server); a secret key typed here stays in memory and is used
 * only by sign.js. All data is written to the page with textContent, never as HTML.
 */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_HEADER = "X-Timserver-Console-Token";
  const PREFS = "timserver.console.prefs";
  const TOKEN_KEY = "timserver.console.token";
  const ADMIN_SIG_EXPIRE = 3600;
  const SIG_CACHE_MS = 5 * 60 * 1000;
  const BATCH = 100;
  const JOURNAL_POLL_MS = 1000;
  const JOURNAL_VIEW_MAX = 1000;
  const HISTORY = "timserver.console.history";
  const HISTORY_MAX = 50;

  const S = {
    meta: null,
    errors: new Map(),
    commands: [],
    skew: 0,
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    tokenOk: false,
    apps: [],
    sigCache: new Map(),
    page: "debugger",
    last: null,           // the debugger's last request, for reveal/copy
    acc: { stack: [""], index: 0, rows: [] },
    journal: { entries: new Map(), clearedAt: 0, timer: null, fresh: new Set(), busy: false, shown: null },
    cb: { list: [], shown: null, timer: null, busy: false, settings: null, seen: new Set(), seq: 0 },
    platform: "",         // the platform last chosen to log a device in on (Accounts)
    linkApp: "",          // the app named by the link `timserver serve` printed (#token=…&app=…)
  };

  // --- small helpers ----------------------------------------------------------------------

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const enc = encodeURIComponent;

  /** Fill ``el`` with ``text`` as highlighted JSON: spans made from text nodes, never HTML. */
  const JSON_TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  function highlight(el, text) {
    el.replaceChildren();
    let at = 0;
    for (const m of text.matchAll(JSON_TOKEN)) {
      if (m.index > at) el.append(text.slice(at, m.index));
      const kind = m[1] ? (m[2] ? "tok-key" : "tok-str") : /^[tfn]/.test(m[0]) ? "tok-lit" : "tok-num";
      el.append(h("span", { class: kind, text: m[1] || m[0] }));
      if (m[2]) el.append(m[2]);
      at = m.index + m[0].length;
    }
    if (at < text.length) el.append(text.slice(at));
  }

  /** A body as the page shows it: pretty-printed when it is JSON, else as it came. */
  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
  }

  function showError(el, text) {
    el.textContent = text;
    el.className = "inline-error";
    el.setAttribute("role", "alert");
  }

  class ApiError extends Error {
    constructor(resp) {
      super(`${resp.ErrorCode}${codeName(resp.ErrorCode) ? " " + codeName(resp.ErrorCode) : ""}: ${resp.ErrorInfo}`);
      this.resp = resp;
    }
  }

  function codeName(code) {
    const spec = S.errors.get(code);
    return spec ? spec.Name : "";
  }

  function meaning(code) {
    if (code === 0) return "Success.";
    const spec = S.errors.get(code);
    return spec ? spec.Meaning : `ErrorCode ${code} is not in timserver's catalogue (it may come from another server).`;
  }

  function loadPrefs() {
    try { return JSON.parse(localStorage.getItem(PREFS) || "{}"); } catch { return {}; }
  }

  function savePrefs() {
    const p = {
      sdkappid: $("sdkappid").value.trim(),
      identifier: $("identifier").value.trim(),
      signing: signingMode(),
      endpoint: $("endpoint-select").value,
      custom: $("endpoint-custom").value.trim(),
    };
    try { localStorage.setItem(PREFS, JSON.stringify(p)); } catch { /* private mode */ }
  }

  async function api(path, { method = "GET", body, token = false, raw = false } = {}) {
    const headers = {};
    if (token && S.token) headers[TOKEN_HEADER] = S.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, cache: "no-store", credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (raw) return res;
    const text = await res.text();
    try { return JSON.parse(text); } catch {
      throw new Error(`The server answered HTTP ${res.status} with something that is not JSON.`);
    }
  }

  function fmtTime(ts, withDate = true) {
    const d = new Date(ts * 1000);
    if (Number.isNaN(d.getTime())) return "—";
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : `${time}.${pad(d.getMilliseconds(), 3)}`;
  }

  function relative(ts, now) {
    const delta = ts - now, span = Math.abs(delta);
    let r;
    if (span < 120) r = `${Math.round(span)} s`;
    else if (span < 7200) r = `${Math.floor(span / 60)} min`;
    else if (span < 172800) r = `${Math.floor(span / 3600)} h`;
    else r = `${Math.floor(span / 86400)} days`;
    return delta > 0 ? `in ${r}` : delta < 0 ? `${r} ago` : "now";
  }

  function fmtBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1048576).toFixed(1)} MiB`;
  }

  function serverNow() { return Date.now() / 1000 + S.skew; }

  async function copyText(text, button) {
    let done = false;
    try {
      if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); done = true; }
    } catch { /* fall back below */ }
    if (!done) {
      const area = h("textarea", { class: "visually-hidden", "aria-hidden": "true" });
      area.value = text;
      document.body.append(area);
      area.select();
      try { done = document.execCommand("copy"); } catch { done = false; }
      area.remove();
    }
    if (button) {
      const old = button.textContent;
      button.textContent = done ? "Copied ✓" : "Copy failed";
      setTimeout(() => { button.textContent = old; }, 1500);
    }
  }

  function message(el, kind, text, details) {
    el.replaceChildren();
    el.className = `message message-${kind}`;
    el.append(h("strong", { text }));
    if (details && details.length) {
      el.append(h("ul", {}, details.slice(0, 50).map((d) => h("li", { text: d }))));
      if (details.length > 50) el.append(h("p", { text: `…and ${details.length - 50} more.` }));
    }
  }

  function confirmAction(title, text, okLabel) {
    const dlg = $("confirm-dialog");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel;
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
      dlg.returnValue = "cancel";
      dlg.showModal();
    });
  }

  // --- credentials and UserSigs -----------------------------------------------------------------

  function signingMode() {
    return $("signing-server").checked ? "server" : "key";
  }

  function creds() {
    return {
      sdkappid: $("sdkappid").value.trim(),
      identifier: $("identifier").value.trim(),
      mode: signingMode(),
    };
  }

  /** A UserSig for (sdkappid, identifier): from this server (token) or signed here (key). */
  async function signFor(sdkappid, identifier, expire, { forSelf = true, cache = false } = {}) {
    if (!/^\d{1,10}$/.test(sdkappid)) throw new Error("Enter the app's SDKAppID (digits only).");
    if (!identifier) throw new Error("Enter an identifier (UserID).");
    if (signingMode() === "server") {
      if (!forSelf) {  // a UserSig made by this server never leaves for another host
        throw new Error("A UserSig signed by this server is sent to this server only: to call another host, choose “From my key” (the key stays in this page).");
      }
      if (!S.tokenOk) {
        throw new Error("This server signs only for a console that holds its token: open the link that `timserver serve` printed, or choose “From my key”.");
      }
      const ck = `${sdkappid}\n${identifier}\n${expire}`;
      const hit = cache && S.sigCache.get(ck);
      if (hit && Date.now() - hit.at < SIG_CACHE_MS) return hit.sig;
      const r = await api("/_timserver/console/usersig", {
        method: "POST", token: true, body: { SDKAppID: Number(sdkappid), Identifier: identifier, Expire: expire },
      });
      if (r.ErrorCode !== 0) throw new ApiError(r);
      if (cache) S.sigCache.set(ck, { sig: r.UserSig, at: Date.now() });
      return r.UserSig;
    }
    const key = $("key").value.trim();
    if (!key) throw new Error("Type the app's secret key (it stays in this page), or let this server sign (needs the console token).");
    const now = forSelf ? serverNow() : Date.now() / 1000;
    return window.TimSign.genUserSig(sdkappid, key, identifier, expire, now);
  }

  async function adminSig() {
    const c = creds();
    return signFor(c.sdkappid, c.identifier, ADMIN_SIG_EXPIRE, { cache: true });
  }

  function authQuery(sig) {
    const c = creds();
    return `sdkappid=${enc(c.sdkappid)}&identifier=${enc(c.identifier)}&usersig=${enc(sig)}`;
  }

  /** Call an admin extension endpoint; a sig refused as expired/kicked is re-signed once. */
  async function adminCall(path, { method = "GET", body, params = {} } = {}) {
    for (let attempt = 0; ; attempt++) {
      const sig = await adminSig();
      let q = authQuery(sig);
      for (const [k, v] of Object.entries(params)) q += `&${enc(k)}=${enc(v)}`;
      const r = await api(`${path}?${q}`, { method, body });
      if ((r.ErrorCode === 70001 || r.ErrorCode === 70005) && attempt === 0) { S.sigCache.clear(); continue; }
      return r;
    }
  }

  function credsChanged() {
    S.sigCache.clear();
    savePrefs();
    syncAppSelect();
    renderHints();
    if (S.page === "accounts") loadAccounts(true);
    if (S.page === "journal") { S.journal.entries.clear(); renderJournal(); pollJournal(); }
    S.cb.listed = undefined;
    if (S.page === "callbacks") { S.cb.list = []; S.cb.shown = null; $("cb-detail").hidden = true; loadCallbackSettings(); pollCallbacks(); }
  }

  function syncAppSelect() {
    const v = $("sdkappid").value.trim();
    const sel = $("app-select");
    sel.value = S.apps.some((a) => String(a.SDKAppID) === v) ? v : "";
  }

  function renderHints() {
    const c = creds();
    const server = c.mode === "server";
    $("key-field").hidden = server;
    const hint = $("app-hint");
    if (server && !S.tokenOk) {
      hint.textContent = "This server signs UserSigs only for a console that holds its token. Open the link printed by `timserver serve`, or type the app's key.";
      hint.className = "hint hint-warn";
    } else if (server) {
      hint.textContent = `Admin UserSigs for ${c.sdkappid || "the app"} are signed by this server with the app's key; the key never reaches this page.`;
      hint.className = "hint";
    } else {
      hint.textContent = "UserSigs are signed in this browser (TLSSigAPIv2, HMAC-SHA256). The key is kept in this page's memory only and is never sent anywhere.";
      hint.className = "hint";
    }
    $("gen-how").textContent = server
      ? "This server signs it with the hosted app's key."
      : "Your browser signs it with the key typed above.";
  }

  function renderSession() {
    const pill = $("session-status");
    if (S.tokenOk) {
      pill.textContent = "Operator session";
      pill.className = "pill pill-ok";
      pill.title = "This tab holds the console token: the server lists its apps and signs for them.";
    } else {
      pill.textContent = S.token ? "Token rejected" : "No console token";
      pill.className = S.token ? "pill pill-bad" : "pill pill-muted";
      pill.title = "Without the token, type an app's key; the page signs in your browser.";
    }
    $("signing-server").disabled = !S.tokenOk;
    $("jscope-all").disabled = !S.tokenOk;
  }

  async function loadApps() {
    S.tokenOk = false;
    S.apps = [];
    if (S.token) {
      try {
        const r = await api("/_timserver/console/apps", { token: true });
        if (r.ErrorCode === 0) { S.tokenOk = true; S.apps = r.Apps; }
      } catch { /* shown as "Token rejected" */ }
    }
    const sel = $("app-select");
    sel.replaceChildren(h("option", { value: "", text: S.apps.length ? "Other SDKAppID (type it)" : S.tokenOk ? "No app on this server" : "Type an SDKAppID →" }));
    for (const a of S.apps) {
      sel.append(h("option", { value: String(a.SDKAppID), text: `${a.SDKAppID} · ${a.Edition} · ${a.Accounts} account${a.Accounts === 1 ? "" : "s"}` }));
    }
    renderSession();
  }

  // --- routing -------------------------------------------------------------------------------

  const PAGES = ["debugger", "accounts", "usersig", "journal", "callbacks"];

  function route() {
    let hash = location.hash.replace(/^#/, "");
    let page = "debugger";
    const m = hash.match(/^\/v4\/([^/?#]+)\/([^/?#]+)/);
    if (m) {
      selectCommand(m[1], m[2]);
    } else {
      const name = hash.replace(/^\//, "").split(/[/?]/)[0];
      if (PAGES.includes(name)) page = name;
    }
    S.page = page;
    for (const el of document.querySelectorAll("[data-page]")) el.hidden = el.dataset.page !== page;
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    document.title = `${document.querySelector(`[data-nav="${page}"]`).textContent} · timserver console`;
    if (page === "accounts") loadAccounts(false);
    if (page === "journal") pollJournal(); else stopJournal();
    if (page === "callbacks") { loadCallbackSettings(); pollCallbacks(); } else stopCallbacks();
  }

  // --- API debugger ------------------------------------------------------------------------------

  function currentCommand() {
    return S.commands.find((c) => c.Path === $("command-select").value);
  }

  function selectCommand(service, name) {
    const c = S.commands.find((x) => x.Service === service && x.Command === name);
    if (c && $("command-select").value !== c.Path) {
      $("command-select").value = c.Path;
      commandChanged();
    }
  }

  function commandChanged() {
    const c = currentCommand();
    if (!c) return;
    $("body-input").value = JSON.stringify(c.Sample, null, 2);
    $("command-info").textContent = `${c.Summary}. POST ${c.Path} · up to ${c.MaxItems} item${c.MaxItems === 1 ? "" : "s"} per call · default rate ${c.DefaultRate} calls/s.`;
    $("debug-error").textContent = "";
  }

  function endpointBase() {
    if ($("endpoint-select").value === "self") return { base: location.origin, self: true };
    const raw = $("endpoint-custom").value.trim().replace(/\/+$/, "");
    if (!/^https?:\/\/[^\s/?#]+$/i.test(raw)) throw new Error("Enter the other endpoint as a base URL, e.g. https://console.tim.qq.com");
    return { base: raw, self: raw === location.origin };
  }

  function maskUrl(url, sig) {
    if (!sig) return url;
    const shown = `${sig.slice(0, 6)}…[${sig.length - 6} characters hidden]`;
    return url.replace(`usersig=${sig}`, `usersig=${shown}`);
  }

  function shellQuote(s) { return `'${s.replace(/'/g, "'\\''")}'`; }

  function renderSent() {
    const last = S.last;
    if (!last) return;
    const reveal = $("reveal-sig").checked;
    const url = reveal ? last.url : maskUrl(last.url, last.sig);
    $("req-url").textContent = url;
    $("req-body").textContent = last.body;
    $("req-curl").textContent = `curl -s -X POST ${shellQuote(url)} -d ${shellQuote(last.body)}`;
    $("request-card").hidden = false;
  }

  function resultTable(resp) {
    const wrap = $("resp-table");
    wrap.replaceChildren();
    if (Array.isArray(resp.ResultItem) && resp.ResultItem.length) {
      const cols = [...new Set(resp.ResultItem.flatMap((r) => Object.keys(r)))];
      const rows = resp.ResultItem.map((r) => h("tr", {}, cols.map((c) => {
        const v = r[c];
        if (c === "AccountStatus") return h("td", {}, h("span", { class: `badge ${v === "Imported" ? "badge-ok" : "badge-muted"}`, text: v }));
        if (c === "ResultCode") return h("td", {}, h("span", { class: `code-chip ${v === 0 ? "" : "code-bad"}`, title: meaning(v), text: String(v) }));
        return h("td", { text: v === undefined ? "" : String(v) });
      })));
      wrap.append(h("div", { class: "table-wrap" }, h("table", { class: "table table-compact", id: "resp-items" },
        h("caption", { class: "visually-hidden", text: "ResultItem" }),
        h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col", text: c })))),
        h("tbody", {}, rows))));
    } else if (Array.isArray(resp.FailAccounts)) {
      wrap.append(h("p", { class: "meaning", text: resp.FailAccounts.length
        ? `FailAccounts: ${resp.FailAccounts.join(", ")}` : "FailAccounts is empty: every account was imported." }));
    }
  }

  async function sendRequest(ev) {
    ev.preventDefault();
    const errEl = $("debug-error");
    errEl.textContent = "";
    const btn = $("send");
    btn.disabled = true;
    btn.textContent = "Sending…";
    try {
      const c = currentCommand();
      if (!c) throw new Error("Pick a command.");
      const ep = endpointBase();
      const cr = creds();
      const sig = await signFor(cr.sdkappid, cr.identifier, ADMIN_SIG_EXPIRE, { forSelf: ep.self, cache: ep.self });
      const random = crypto.getRandomValues(new Uint32Array(1))[0];
      const url = `${ep.base}${c.Path}?sdkappid=${enc(cr.sdkappid)}&identifier=${enc(cr.identifier)}&usersig=${enc(sig)}&random=${random}&contenttype=json`;
      const body = $("body-input").value;
      S.last = { url, sig, body };
      renderSent();
      const t0 = performance.now();
      let res, text;
      try {
        res = await fetch(url, { method: "POST", body, cache: "no-store", credentials: "omit" });
        text = await res.text();
      } catch (e) {
        throw new Error(`No answer from ${ep.base}: ${e.message}. (A browser can call only hosts that answer with CORS headers.)`);
      }
      const ms = performance.now() - t0;
      renderResponse(res.status, text, ms);
      let code = null;
      try { code = JSON.parse(text).ErrorCode; } catch { /* not JSON */ }
      remember({ Path: c.Path, Endpoint: ep.self ? "" : ep.base, SDKAppID: cr.sdkappid, Identifier: cr.identifier, Body: body, ErrorCode: code });
    } catch (e) {
      errEl.textContent = e.message;
    } finally {
      btn.disabled = false;
      btn.textContent = "Send request";
    }
  }

  function renderResponse(status, text, ms) {
    $("response-empty").hidden = true;
    $("response").hidden = false;
    $("resp-latency").textContent = `${ms.toFixed(1)} ms`;
    $("resp-http").textContent = String(status);
    let resp = null;
    try { resp = JSON.parse(text); } catch { /* shown raw */ }
    const statusEl = $("resp-status"), codeEl = $("resp-code");
    if (resp && typeof resp === "object") {
      const okay = resp.ActionStatus === "OK";
      statusEl.textContent = String(resp.ActionStatus);
      statusEl.className = `badge ${okay ? "badge-ok" : "badge-bad"}`;
      const name = codeName(resp.ErrorCode);
      codeEl.textContent = `ErrorCode ${resp.ErrorCode}${name ? " · " + name : ""}`;
      codeEl.className = `code-chip ${resp.ErrorCode === 0 ? "" : "code-bad"}`;
      const m = $("resp-meaning");
      m.replaceChildren(h("strong", { text: resp.ErrorCode === 0 ? "Success. " : "Meaning: " }),
        resp.ErrorCode === 0 ? "" : meaning(resp.ErrorCode));
      if (resp.ErrorInfo && resp.ErrorCode !== 0) m.append(h("br"), h("span", { class: "error-info", text: `ErrorInfo: ${resp.ErrorInfo}` }));
      resultTable(resp);
      highlight($("resp-body"), JSON.stringify(resp, null, 2));
    } else {
      statusEl.textContent = "Not JSON";
      statusEl.className = "badge badge-bad";
      codeEl.textContent = "";
      $("resp-meaning").textContent = "The answer is not a JSON envelope.";
      $("resp-table").replaceChildren();
      $("resp-body").textContent = text;
    }
  }

  // --- request history (localStorage: never a key, a UserSig or a query string) ---------------

  function loadHistory() {
    try {
      const list = JSON.parse(localStorage.getItem(HISTORY) || "[]");
      return Array.isArray(list) ? list.slice(0, HISTORY_MAX) : [];
    } catch { return []; }
  }

  function remember(item) {
    const list = [{ ...item, At: Date.now() / 1000 }, ...loadHistory()].slice(0, HISTORY_MAX);
    try { localStorage.setItem(HISTORY, JSON.stringify(list)); } catch { /* private mode, full */ }
    renderHistory();
  }

  function renderHistory() {
    const list = loadHistory();
    const ol = $("history-list");
    if (!list.length) {
      ol.replaceChildren(h("li", { class: "muted", text: "No request sent from this browser yet." }));
      return;
    }
    ol.replaceChildren(...list.map((it, i) => h("li", { class: "history-item", "data-index": i },
      h("span", { class: "nowrap muted", title: fmtTime(it.At), text: fmtTime(it.At, false).slice(0, 8) }),
      h("code", { class: "history-path", text: it.Path.split("/").pop() }),
      h("span", { class: `code-chip ${it.ErrorCode === 0 ? "" : "code-bad"}`, text: it.ErrorCode === null || it.ErrorCode === undefined ? "—" : String(it.ErrorCode) }),
      h("span", { class: "history-where muted", text: `${it.SDKAppID} · ${it.Identifier}${it.Endpoint ? ` · ${it.Endpoint}` : ""}` }),
      h("span", { class: "actions" },
        h("button", { type: "button", class: "btn btn-ghost btn-small", text: "Edit", "aria-label": `Edit request ${i + 1}`, onclick: () => useHistory(it, false) }),
        h("button", { type: "button", class: "btn btn-small", text: "Re-send", "aria-label": `Re-send request ${i + 1}`, onclick: () => useHistory(it, true) })))));
  }

  function useHistory(it, send) {
    const c = S.commands.find((x) => x.Path === it.Path);
    if (!c) { showError($("debug-error"), `This server has no command ${it.Path}.`); return; }
    $("command-select").value = c.Path;
    commandChanged();
    history.replaceState(null, "", `#${c.Path}`);
    $("body-input").value = it.Body;
    $("endpoint-select").value = it.Endpoint ? "custom" : "self";
    if (it.Endpoint) $("endpoint-custom").value = it.Endpoint;
    $("endpoint-custom-field").hidden = !it.Endpoint;
    if (it.SDKAppID !== $("sdkappid").value.trim() || it.Identifier !== $("identifier").value.trim()) {
      $("sdkappid").value = it.SDKAppID;
      $("identifier").value = it.Identifier;
      credsChanged();
    }
    if (send) $("debug-form").requestSubmit(); else $("body-input").focus();
  }

  // --- accounts ------------------------------------------------------------------------------

  function accMessage(kind, text, details, where) {
    const el = where || $("acc-message");
    message(el, kind, text, details);
    if (kind === "error") el.setAttribute("role", "alert"); else el.setAttribute("role", "status");
  }

  async function loadAccounts(reset) {
    const A = S.acc;
    if (reset) { A.stack = [""]; A.index = 0; }
    const c = creds();
    const rows = $("acc-rows");
    if (!c.sdkappid || !c.identifier) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "empty", text: "Choose an app and its admin above." })));
      $("acc-summary").textContent = "";
      return;
    }
    $("acc-summary").textContent = "Loading…";
    const seq = A.seq = (A.seq || 0) + 1;
    let r;
    try {
      r = await adminCall("/_timserver/accounts", {
        params: { prefix: $("acc-prefix").value, after: A.stack[A.index], limit: $("acc-limit").value },
      });
      if (seq !== A.seq) return; // a newer load (search, page) was started meanwhile
    } catch (e) {
      if (seq !== A.seq) return;
      $("acc-summary").textContent = "";
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "empty error-text", role: "alert", text: e.message })));
      return;
    }
    if (r.ErrorCode !== 0) {
      $("acc-summary").textContent = "";
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "empty error-text", role: "alert", text: new ApiError(r).message })));
      $("acc-prev").disabled = $("acc-next").disabled = true;
      return;
    }
    A.rows = r.Accounts;
    A.next = r.Next;
    renderAccounts(r);
  }

  function renderAccounts(r) {
    const A = S.acc;
    const rows = $("acc-rows");
    $("acc-check-all").checked = false;
    if (!r.Accounts.length) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "empty", text: $("acc-prefix").value ? "No account starts with that." : "No accounts yet." })));
    } else {
      rows.replaceChildren(...r.Accounts.map((a) => h("tr", { "data-userid": a.UserID, "data-status": a.Status || "Offline" },
        h("td", { class: "col-check" }, h("input", { type: "checkbox", class: "acc-check", value: a.UserID, "aria-label": `Select ${a.UserID}`, disabled: a.IsAdmin, onchange: updateSelection })),
        h("td", { "data-label": "UserID" }, h("code", { class: "userid", text: a.UserID }),
          a.IsAdmin ? h("span", { class: "badge badge-info badge-small", text: "Admin" }) : null),
        h("td", { "data-label": "Nick", text: a.Nick || "" }),
        h("td", { "data-label": "FaceUrl", class: "truncate", title: a.FaceUrl || "", text: a.FaceUrl || "" }),
        h("td", { "data-label": "Imported", class: "nowrap", text: fmtTime(a.CreatedAt) }),
        h("td", { "data-label": "Login state", class: "acc-state" }, h("span", { class: "acc-state-box" }, loginState(a), loginButtons(a))),
        h("td", { class: "col-actions" }, h("span", { class: "acc-actions" },
          h("button", { type: "button", class: "btn btn-small btn-ghost", text: "Kick", "aria-label": `Kick ${a.UserID}`, onclick: () => kick(a.UserID) }),
          h("button", { type: "button", class: "btn btn-small btn-ghost btn-ghost-danger", text: "Delete", "aria-label": `Delete ${a.UserID}`,
            disabled: a.IsAdmin, title: a.IsAdmin ? "Admin accounts cannot be deleted" : null, onclick: () => deleteAccounts([a.UserID]) }))))));
    }
    renderLoginNote();
    const first = A.index * Number($("acc-limit").value);
    const all = `${r.Total} account${r.Total === 1 ? "" : "s"}`;
    if ($("acc-prefix").value) {  // the count of matches is known once the last page is shown
      const seen = first + r.Accounts.length;
      const n = r.Next ? `More than ${seen} matches` : `${seen} match${seen === 1 ? "" : "es"}`;
      $("acc-summary").textContent = `${n} of ${all} in app ${r.SDKAppID}`;
    } else {
      $("acc-summary").textContent = `${all} in app ${r.SDKAppID}`;
    }
    $("acc-page").textContent = r.Accounts.length ? `Showing ${first + 1}–${first + r.Accounts.length}` : "";
    $("acc-prev").disabled = A.index === 0;
    $("acc-next").disabled = !r.Next;
    updateSelection();
  }

  function selectedIds() {
    return [...document.querySelectorAll(".acc-check:checked")].map((x) => x.value);
  }

  function updateSelection() {
    const n = selectedIds().length;
    const b = $("acc-delete-selected");
    b.disabled = n === 0;
    b.textContent = n ? `Delete selected (${n})` : "Delete selected";
  }

  // --- login state (docs/protocol.md §11.2): shown always, changed only with the emulator ----------

  const STATUS_BADGE = { Online: "badge-ok", PushOnline: "badge-warn", Offline: "badge-muted" };

  function loginState(a) {
    const status = a.Status || "Offline";
    const devices = a.Devices || [];
    return h("span", { class: "login-state" },
      h("span", { class: `badge ${STATUS_BADGE[status] || "badge-muted"} acc-status`, text: status }),
      devices.map((d) => h("span", { class: `device device-${d.Status === "Online" ? "on" : "push"}`, title: `InstId ${d.InstId} · logged in ${fmtTime(d.LoginAt)} (the app's clock)` },
        h("span", { text: `${d.Platform} · ${d.Status}` }),
        S.meta.Emulator ? h("button", { type: "button", class: "device-out", text: "×", "aria-label": `Log ${a.UserID} out of ${d.Platform}`,
          title: `Log out this ${d.Platform} device`, onclick: () => changeLogin("logout", a.UserID, d.Platform) }) : null)));
  }

  function loginButtons(a) {
    if (!S.meta.Emulator) return null;
    const platforms = S.meta.Platforms || [];
    const sel = h("select", { class: "acc-platform", "aria-label": `Platform to log ${a.UserID} in on` },
      platforms.map((p) => h("option", { value: p, text: p, selected: p === (S.platform || platforms[0]) })));
    sel.addEventListener("change", () => { S.platform = sel.value; });
    return h("span", { class: "acc-login" }, sel,
      h("button", { type: "button", class: "btn btn-small", text: "Log in", "aria-label": `Log ${a.UserID} in`,
        onclick: () => changeLogin("login", a.UserID, sel.value) }),
      h("button", { type: "button", class: "btn btn-small btn-ghost", text: "Log out", "aria-label": `Log ${a.UserID} out`,
        disabled: !(a.Devices || []).length, title: (a.Devices || []).length ? "Log every device of this account out" : "No device is logged in",
        onclick: () => changeLogin("logout", a.UserID, null) }));
  }

  function renderLoginNote() {
    $("acc-login-note").textContent = S.meta.Emulator
      ? "Login state as openim/query_online_status answers it. Log in / Log out simulate a client's login on a device (the emulator's /_timserver/login and /_timserver/logout); logins send State.StateChange callbacks (see Callbacks)."
      : "Login state as openim/query_online_status answers it. This server runs without the emulator (serve --no-emulator): simulated logins are off, so the console cannot log devices in or out.";
  }

  /** Log a device in or out through the emulator's endpoints, as the app's admin. */
  async function changeLogin(action, uid, platform) {
    const body = { UserID: uid };
    if (platform) body.Platform = platform;
    try {
      const r = await adminCall(`/_timserver/${action}`, { method: "POST", body });
      if (r.ErrorCode !== 0) throw new ApiError(r);
      if (action === "login") {
        const replaced = r.KickedDevice && r.KickedDevice.length ? ` It replaced the ${platform} device logged in before.` : "";
        accMessage("ok", `Logged ${uid} in on ${platform}.${replaced}`);
      } else {
        const n = r.LoggedOut.length;
        accMessage("ok", n ? `Logged ${uid} out of ${n} device${n === 1 ? "" : "s"} (${r.LoggedOut.map((d) => d.Platform).join(", ")}).` : `${uid} had no device logged in${platform ? ` on ${platform}` : ""}.`);
      }
    } catch (e) { accMessage("error", `${action === "login" ? "Log in" : "Log out"} failed: ${e.message}`); }
    loadAccounts(false);
  }

  async function kick(uid) {
    if (!(await confirmAction("Kick account", `Invalidate every UserSig of ${uid} signed until now? Its clients must sign in again.`, "Kick"))) return;
    try {
      const r = await adminCall("/_timserver/accounts/kick", { method: "POST", body: { UserID: uid } });
      if (r.ErrorCode !== 0) throw new ApiError(r);
      if (uid === creds().identifier) S.sigCache.clear();
      accMessage("ok", `Kicked ${uid}: UserSigs it signed until now are refused (70005).`);
    } catch (e) { accMessage("error", `Kick failed: ${e.message}`); }
    loadAccounts(false);  // a kick logs every device out
  }

  async function deleteAccounts(ids) {
    const what = ids.length === 1 ? ids[0] : `${ids.length} accounts`;
    if (!(await confirmAction("Delete accounts", `Delete ${what}? This cannot be undone.`, "Delete"))) return;
    const failed = [];
    let deleted = 0;
    try {
      for (let i = 0; i < ids.length; i += BATCH) {
        const r = await adminCall("/_timserver/accounts/delete", { method: "POST", body: { DeleteItem: ids.slice(i, i + BATCH).map((u) => ({ UserID: u })) } });
        if (r.ErrorCode !== 0) throw new ApiError(r);
        for (const it of r.ResultItem) {
          if (it.ResultCode === 0) deleted++; else failed.push(`${it.UserID}: ${it.ResultCode} ${it.ResultInfo}`);
        }
      }
      accMessage(failed.length ? "warn" : "ok", `Deleted ${deleted} account${deleted === 1 ? "" : "s"}.`, failed);
    } catch (e) { accMessage("error", `Delete failed: ${e.message}`, failed); }
    loadAccounts(false);
    refreshAppCounts();
  }

  function parseList(text) {
    const t = text.trim();
    if (!t) return [];
    if (t.startsWith("[")) {
      let arr;
      try { arr = JSON.parse(t); } catch (e) { throw new Error(`The list looks like JSON but does not parse: ${e.message}`); }
      if (!Array.isArray(arr)) throw new Error("A JSON list must be an array.");
      return arr.map((x) => (typeof x === "string" ? { UserID: x } : x));
    }
    const out = [];
    for (const [n, line] of t.split(/\r?\n/).entries()) {
      const l = line.trim();
      if (!l || l.startsWith("#")) continue;
      if (n === 0 && /^userid\s*(,|$)/i.test(l)) continue; // a CSV header
      const i = l.indexOf(",");
      if (i < 0) { out.push({ UserID: l }); continue; }
      const j = l.indexOf(",", i + 1);
      const item = { UserID: l.slice(0, i).trim() };
      const nick = (j < 0 ? l.slice(i + 1) : l.slice(i + 1, j)).trim();
      if (nick) item.Nick = nick;
      if (j >= 0 && l.slice(j + 1).trim()) item.FaceUrl = l.slice(j + 1).trim();
      out.push(item);
    }
    return out;
  }

  async function importAccounts(items, progressEl) {
    const failures = [];
    let imported = 0;
    try {
      for (let i = 0; i < items.length; i += BATCH) {
        if (progressEl) progressEl.textContent = `Importing ${Math.min(i + BATCH, items.length)} of ${items.length}…`;
        const r = await adminCall("/_timserver/accounts/import", { method: "POST", body: { AccountList: items.slice(i, i + BATCH) } });
        if (r.ErrorCode !== 0) throw new ApiError(r);
        imported += r.Imported;
        for (const f of r.Failures) failures.push(`${f.UserID}: ${f.Reason}`);
      }
      const kind = failures.length ? (imported ? "warn" : "error") : "ok";
      const what = items.length === 1 && !failures.length ? `Imported ${items[0].UserID}.` : `Imported ${imported} account${imported === 1 ? "" : "s"}${failures.length ? `; ${failures.length} failed` : ""}.`;
      accMessage(kind, what, failures, progressEl ? $("imp-result") : null);
      if (!failures.length && !progressEl) for (const id of ["imp-userid", "imp-nick", "imp-face"]) $(id).value = "";
    } catch (e) {
      accMessage("error", `Import stopped after ${imported} account${imported === 1 ? "" : "s"}: ${e.message}`, failures, progressEl ? $("imp-result") : null);
    } finally {
      if (progressEl) progressEl.textContent = "";
    }
    loadAccounts(false);
    refreshAppCounts();
  }

  /** The hosted-app list shows account counts: refresh them after a change. */
  async function refreshAppCounts() {
    if (!S.tokenOk) return;
    await loadApps();
    syncAppSelect();
  }

  // --- UserSig tools -------------------------------------------------------------------------

  async function generate(ev) {
    ev.preventDefault();
    $("gen-error").textContent = "";
    try {
      const sig = await signFor(creds().sdkappid, $("gen-userid").value.trim(), Number($("gen-expire").value));
      $("gen-sig").value = sig;
      $("gen-output").hidden = false;
    } catch (e) {
      $("gen-error").textContent = e.message;
    }
  }

  async function explain(ev) {
    if (ev) ev.preventDefault();
    $("exp-error").textContent = "";
    const sig = $("exp-sig").value.trim();
    if (!sig) { $("exp-error").textContent = "Paste a UserSig first."; return; }
    const body = { UserSig: sig };
    const wantApp = $("exp-sdkappid").value.trim();
    if (wantApp) {
      if (!/^\d{1,10}$/.test(wantApp)) { $("exp-error").textContent = "The expected SDKAppID must be digits."; return; }
      body.SDKAppID = Number(wantApp);
    }
    const wantId = $("exp-identifier").value.trim();
    if (wantId) body.Identifier = wantId;
    let r;
    try {
      r = await api("/_timserver/console/usersig/explain", { method: "POST", body, token: true });
      if (r.ErrorCode !== 0) throw new ApiError(r);
    } catch (e) { $("exp-error").textContent = e.message; return; }
    // A key typed on this page can check the signature of an app this server does not host.
    const key = $("key").value.trim();
    const doc = r.Document;
    if (r.Decoded && !r.Hosted && key && signingMode() === "key" && String(doc["TLS.sdkappid"]) === creds().sdkappid
        && (r.Valid || r.Code === 70001)) {
      const expected = await window.TimSign.computeSig(key, doc["TLS.identifier"], doc["TLS.sdkappid"], doc["TLS.time"], doc["TLS.expire"], doc["TLS.userbuf"]);
      r.Checked = "format, expiry and signature (with the key typed on this page, in this browser)";
      if (expected !== doc["TLS.sig"]) {
        Object.assign(r, { Valid: false, Code: 70009, CodeName: codeName(70009), Reason: "The UserSig's signature does not match the key typed on this page: it was signed with another key (or altered after signing)." });
      }
    }
    renderExplain(r);
  }

  function renderExplain(r) {
    $("exp-output").hidden = false;
    const v = $("exp-verdict");
    v.replaceChildren();
    if (r.Valid) {
      v.className = "verdict verdict-ok";
      v.append(h("strong", { text: "Valid: yes" }), h("span", { text: " — a server with this app's key accepts it." }));
    } else {
      v.className = "verdict verdict-bad";
      v.append(h("strong", { text: "Valid: NO" }), h("span", { text: ` — ${r.Reason}` }),
        h("div", { class: "verdict-code", text: `A server answers ErrorCode ${r.Code}${r.CodeName ? ` (${r.CodeName})` : ""}: ${meaning(r.Code)}` }));
    }
    const dl = $("exp-fields");
    dl.replaceChildren();
    const add = (k, val, mono) => dl.append(h("dt", { text: k }), h("dd", {}, mono ? h("code", { text: val }) : val));
    const d = r.Document;
    if (d) {
      add("Identifier", d["TLS.identifier"], true);
      add("SDKAppID", `${d["TLS.sdkappid"]}${r.Hosted ? " (hosted here)" : " (not hosted here)"}`);
      add("Version", d["TLS.ver"] === null ? "(absent)" : d["TLS.ver"]);
      add("Issued", `${fmtTime(d["TLS.time"])} (${relative(d["TLS.time"], r.Now)})`);
      add("Expires", `${fmtTime(d["TLS.time"] + d["TLS.expire"])} (${relative(d["TLS.time"] + d["TLS.expire"], r.Now)}) · valid for ${d["TLS.expire"]} s`);
      if (d["TLS.userbuf"] !== null) add("Userbuf", `${d["TLS.userbuf"]} (TRTC PrivateMapKey; IM does not use it)`, false);
      add("TLS.sig", d["TLS.sig"], true);
    }
    $("exp-checked").textContent = `Checked: ${r.Checked}.`;
  }

  // --- request journal -----------------------------------------------------------------------

  function journalScope() {
    return document.querySelector('input[name="jscope"]:checked').value;
  }

  /** The filters of the journal page, as the journal endpoints take them. */
  function journalFilters() {
    const f = {};
    const command = $("jf-command").value, code = $("jf-code").value.trim(), user = $("jf-user").value.trim();
    const app = $("jf-app").value.trim();
    if (command) f.command = command;
    if (code) f.code = code;
    if (user) f.user_id = user;
    if (app && journalScope() === "all") f.app = app;
    return f;
  }

  function checkJournalFilters() {
    const code = $("jf-code").value.trim(), app = $("jf-app").value.trim();
    if (code && !/^-?\d{1,10}$/.test(code)) return "ErrorCode must be a number, such as 70107.";
    if (app && journalScope() === "all" && !/^\d{1,10}$/.test(app)) return "App must be an SDKAppID (digits only).";
    return "";
  }

  async function fetchJournal(format) {
    const f = journalFilters();
    if (journalScope() === "all") {
      let q = `limit=1000${format ? "&format=" + format : ""}`;
      for (const [k, v] of Object.entries(f)) q += `&${enc(k)}=${enc(v)}`;
      return api(`/_timserver/console/journal?${q}`, { token: true, raw: !!format });
    }
    if (!format) return adminCall("/_timserver/journal", { params: { limit: 200, ...f } });
    const sig = await adminSig();
    let q = `${authQuery(sig)}&limit=1000&format=${format}`;
    for (const [k, v] of Object.entries(f)) q += `&${enc(k)}=${enc(v)}`;
    return fetch(`/_timserver/journal?${q}`, { cache: "no-store" });
  }

  function journalFiltersChanged() {
    S.journal.entries.clear();
    renderJournal();
    pollJournal();
  }

  function stopJournal() {
    clearTimeout(S.journal.timer);
    S.journal.timer = null;
  }

  async function pollJournal() {
    stopJournal();
    const J = S.journal;
    if (S.page !== "journal" || J.busy) return;
    J.busy = true;
    let delay = JOURNAL_POLL_MS;
    try {
      const c = creds();
      const bad = checkJournalFilters();
      if (bad) {
        showError($("j-error"), bad);
      } else if (journalScope() === "app" && (!c.sdkappid || !c.identifier)) {
        $("j-state").textContent = "Choose an app and its admin above.";
      } else {
        const r = await fetchJournal();
        if (r.ErrorCode !== 0) throw new ApiError(r);
        for (const e of r.Entries) {
          if (!J.entries.has(e.Id) && e.Time > J.clearedAt) { J.entries.set(e.Id, e); J.fresh.add(e.Id); }
        }
        $("j-error").textContent = "";
        const workers = r.Workers && r.Workers > 1 ? ` · ${r.Workers} workers` : "";
        $("j-state").textContent = $("j-live").checked ? `Live · the last ${r.Capacity} per worker${workers}` : "Paused";
        renderJournal();
      }
    } catch (e) {
      showError($("j-error"), `Cannot read the journal: ${e.message}`);
      $("j-state").textContent = "";
      delay = 3000;
    } finally {
      J.busy = false;
    }
    if (S.page === "journal" && $("j-live").checked && !document.hidden) J.timer = setTimeout(pollJournal, delay);
  }

  function renderJournal() {
    const J = S.journal;
    let all = [...J.entries.values()].sort((a, b) => b.Time - a.Time || b.Seq - a.Seq);
    if (all.length > JOURNAL_VIEW_MAX) {
      for (const e of all.slice(JOURNAL_VIEW_MAX)) J.entries.delete(e.Id);
      all = all.slice(0, JOURNAL_VIEW_MAX);
    }
    const rows = $("j-rows");
    if (!all.length) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "empty", text: "No request yet. Send one from the API debugger, or call the server with any client." })));
    } else {
      rows.replaceChildren(...all.map((e) => h("tr", {
        class: `j-row${J.fresh.has(e.Id) ? " fresh" : ""}${J.shown === e.Id ? " selected" : ""}`, "data-id": e.Id, tabindex: 0,
        "aria-label": `Show ${e.Command || e.Path} at ${fmtTime(e.Time, false)} in full`,
        onclick: () => showEntry(e.Id), onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); showEntry(e.Id); } },
      },
        h("td", { class: "nowrap", title: fmtTime(e.Time), text: fmtTime(e.Time, false) }),
        h("td", { text: e.SDKAppID === null ? "—" : String(e.SDKAppID) }),
        h("td", { text: e.Identifier || "—" }),
        h("td", {}, e.Command ? h("code", { text: e.Command }) : h("span", { class: "muted", text: `${e.Method} ${e.Path}` }),
          byConsole(e) ? h("span", { class: "badge badge-info badge-small", title: `Sent by this console: ${e.Path}`, text: "console" }) : null),
        h("td", {}, h("span", { class: `code-chip ${e.ErrorCode === 0 ? "" : "code-bad"}`, title: meaning(e.ErrorCode), text: e.ErrorCode === 0 ? "0 OK" : `${e.ErrorCode} ${codeName(e.ErrorCode)}` })),
        h("td", { class: "num", text: `${e.LatencyMs.toFixed(1)} ms` }),
        h("td", { class: "num", text: fmtBytes(e.RequestBytes) }),
        h("td", { class: "num", text: fmtBytes(e.ResponseBytes) }))));
    }
    J.fresh.clear();
    const failed = all.filter((e) => e.ErrorCode !== 0).length;
    const lat = all.map((e) => e.LatencyMs).sort((a, b) => a - b);
    const median = lat.length ? lat[Math.floor(lat.length / 2)] : 0;
    $("j-summary").textContent = all.length
      ? `${all.length} request${all.length === 1 ? "" : "s"} · ${failed} failed · median ${median.toFixed(1)} ms`
      : "";
  }

  function byConsole(e) { return e.Path.startsWith("/_timserver/"); }

  /** One call in full: everything the journal keeps of it (never its query: the UserSig). */
  function showEntry(id) {
    const e = S.journal.entries.get(id);
    if (!e) return;
    S.journal.shown = id;
    for (const tr of document.querySelectorAll("#j-rows tr.selected")) tr.classList.remove("selected");
    const row = document.querySelector(`#j-rows tr[data-id="${CSS.escape(id)}"]`);
    if (row) row.classList.add("selected");
    $("j-detail").hidden = false;
    $("j-detail-title").textContent = `${e.Command || e.Path} · ${fmtTime(e.Time)}`;
    const dl = $("j-detail-fields");
    dl.replaceChildren();
    const add = (k, v, mono) => dl.append(h("dt", { text: k }), h("dd", {}, mono ? h("code", { text: v }) : v));
    add("Request", `${e.Method} ${e.Path}`, true);
    add("Query", byConsole(e) ? "sdkappid, identifier, usersig — not recorded (the journal never keeps a query: it holds the UserSig)"
      : "sdkappid, identifier, usersig, random, contenttype — not recorded (the journal never keeps a query: it holds the UserSig)");
    add("Command", e.Command ? `${e.Command}${byConsole(e) ? " (sent by the console's Accounts page)" : ""}` : "— (not a command of this server)");
    add("App (SDKAppID)", e.SDKAppID === null ? "— (no valid app)" : String(e.SDKAppID));
    add("Admin (identifier)", e.Identifier || "—");
    const name = codeName(e.ErrorCode);
    add("ErrorCode", h("span", {}, h("span", { class: `code-chip ${e.ErrorCode === 0 ? "" : "code-bad"}`, text: `${e.ErrorCode}${name ? " " + name : ""}` }), " ", meaning(e.ErrorCode)));
    add("Answered", `${fmtTime(e.Time)}.${String(Math.round((e.Time % 1) * 1000)).padStart(3, "0")} in ${e.LatencyMs.toFixed(2)} ms`);
    add("Sizes", `request ${e.RequestBytes < 0 ? "—" : fmtBytes(e.RequestBytes)} · response ${fmtBytes(e.ResponseBytes)}`);
    if (e.UserIDs) add("UserIDs named", e.UserIDs.length ? e.UserIDs.join(", ") : "none");
    add("Entry", `${e.Id} (worker pid ${e.Id.split("-")[0]}, sequence ${e.Seq})`, true);
    const recorded = e.RequestBody !== undefined || e.ResponseBody !== undefined;
    const none = "Not recorded: start the server with `timserver serve --record-bodies` (emulator) to keep request and response bodies.";
    for (const [el, body] of [[$("j-detail-request"), e.RequestBody], [$("j-detail-response"), e.ResponseBody]]) {
      if (!recorded) { el.textContent = none; el.classList.add("code-none"); }
      else if (body === undefined || body === null) { el.textContent = "(no body)"; el.classList.add("code-none"); }
      else { el.classList.remove("code-none"); highlight(el, pretty(body)); }
    }
  }

  async function exportJournal() {
    try {
      const res = await fetchJournal("ndjson");
      const type = res.headers.get("content-type") || "";
      if (!type.startsWith("application/x-ndjson")) {
        const r = await res.json();
        throw new ApiError(r);
      }
      const blob = await res.blob();
      const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "");
      const a = h("a", { href: URL.createObjectURL(blob), download: name ? name[1] : "timserver-journal.ndjson" });
      document.body.append(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) {
      showError($("j-error"), `Export failed: ${e.message}`);
    }
  }

  // --- third-party callbacks (docs/protocol.md §11.3) ---------------------------------------------

  const CB_POLL_MS = 1000;

  function hostedApp() {
    const id = creds().sdkappid;
    return S.tokenOk && S.apps.some((a) => String(a.SDKAppID) === id) ? id : "";
  }

  /** The settings: from the console (token) with the edition and allow-delete; else read-only
   * from /_timserver/callbacks, which an admin UserSig may read. */
  async function loadCallbackSettings() {
    const seq = ++S.cb.seq;
    $("cb-error").textContent = "";
    $("cb-delete-error").textContent = "";
    $("cb-message").replaceChildren();
    $("cb-message").className = "message";
    const app = hostedApp();
    if (!app) { S.cb.settings = null; renderCallbackSettings(null); return; }
    try {
      const r = await api(`/_timserver/console/callback?app=${enc(app)}`, { token: true });
      if (seq !== S.cb.seq) return;
      if (r.ErrorCode !== 0) throw new ApiError(r);
      S.cb.settings = r;
      renderCallbackSettings(r);
    } catch (e) {
      if (seq !== S.cb.seq) return;
      showError($("cb-error"), `Cannot read the callback settings: ${e.message}`);
    }
  }

  function renderCallbackSettings(r) {
    const editable = !!r;
    const cb = r ? r.Callback : (S.cb.listed === undefined ? null : S.cb.listed);
    for (const id of ["cb-url", "cb-token", "cb-token-remove", "cb-save", "cb-clear", "cb-allow-delete"]) $(id).disabled = !editable;
    $("cb-note").textContent = editable
      ? "Like timserver app set-callback: this server then POSTs each event switched on to the URL, after the API answer, without retry."
      : "Changing these settings needs the console token (they make this server send requests to any URL); shown here as an admin UserSig reads them.";
    $("cb-note").className = editable ? "hint" : "hint hint-warn";
    $("cb-url").value = cb ? cb.Url : "";
    $("cb-token").value = "";
    $("cb-token-remove").checked = false;
    const tokenSet = !!(cb && cb.Token);
    $("cb-token-state").textContent = tokenSet ? "Token set" : "No token";
    $("cb-token-state").className = `badge ${tokenSet ? "badge-ok" : "badge-muted"}`;
    $("cb-token").placeholder = tokenSet ? "Set — type a new token to replace it" : "Type a token to set it";
    $("cb-token-remove").closest("label").hidden = !tokenSet;
    const commands = r ? r.Commands : ["State.StateChange", "Profile.CallbackPortraitSet"];
    const on = new Set(cb ? cb.Commands : commands);
    $("cb-commands").replaceChildren(...commands.map((c) => h("label", { class: "toggle" },
      h("input", { type: "checkbox", class: "cb-command", value: c, checked: on.has(c), disabled: !editable }), h("code", { text: c }))));
    $("cb-on").textContent = cb ? "Callbacks on" : "Callbacks off";
    $("cb-on").className = `badge ${cb ? "badge-ok" : "badge-muted"}`;
    $("cb-clear").disabled = !editable || !cb;
    const del = $("cb-delete-text");
    if (!r) {
      del.textContent = "Needs the console token.";
      $("cb-allow-delete").checked = false;
    } else if (r.Edition === "pro") {
      del.textContent = r.AllowDelete ? "This pro app deletes accounts (switched on)." : "This pro app refuses account_delete (71000) until deletion is switched on.";
      $("cb-allow-delete").checked = r.AllowDelete;
    } else {
      del.textContent = `This ${r.Edition} app always deletes accounts: the switch matters on the pro edition only.`;
      $("cb-allow-delete").checked = r.AllowDelete;
    }
  }

  async function saveCallback(body, what) {
    const app = hostedApp();
    if (!app) throw new Error("Changing callback settings needs the console token and an app hosted here.");
    const r = await api("/_timserver/console/callback", { method: "POST", token: true, body: { SDKAppID: Number(app), ...body } });
    if (r.ErrorCode !== 0) throw new ApiError(r);
    S.cb.settings = r;
    renderCallbackSettings(r);
    message($("cb-message"), "ok", what(r));
    return r;
  }

  async function submitCallback(ev) {
    ev.preventDefault();
    $("cb-error").textContent = "";
    const url = $("cb-url").value.trim();
    const commands = [...document.querySelectorAll(".cb-command:checked")].map((x) => x.value);
    if (!/^https?:\/\/[^\s/?#]+/i.test(url)) { showError($("cb-error"), "Type the receiver's URL: http:// or https://, with a host."); return; }
    if (!commands.length) { showError($("cb-error"), "Switch at least one callback command on (or turn callbacks off)."); return; }
    const body = { Url: url, Commands: commands };
    const token = $("cb-token").value;
    if ($("cb-token-remove").checked) body.Token = null;
    else if (token) body.Token = token;  // absent: the token set stays
    try {
      await saveCallback(body, (r) => `Saved: ${r.Callback.Commands.join(", ")} go to the URL${r.Callback.Token ? ", signed with the token" : ", without a token"}.`);
    } catch (e) { showError($("cb-error"), `Not saved: ${e.message}`); }
  }

  async function clearCallback() {
    if (!(await confirmAction("Turn callbacks off", "Send this app no more callbacks? The URL and the token are forgotten.", "Turn off"))) return;
    try {
      await saveCallback({ Clear: true }, () => "Callbacks are off: this app's events are sent nowhere.");
    } catch (e) { showError($("cb-error"), `Not changed: ${e.message}`); }
  }

  async function toggleAllowDelete() {
    $("cb-delete-error").textContent = "";
    const want = $("cb-allow-delete").checked;
    try {
      await saveCallback({ AllowDelete: want }, () => `account_delete is now switched ${want ? "on" : "off"}.`);
    } catch (e) {
      $("cb-allow-delete").checked = !want;
      showError($("cb-delete-error"), `Not changed: ${e.message}`);
    }
  }

  function stopCallbacks() {
    clearTimeout(S.cb.timer);
    S.cb.timer = null;
  }

  async function pollCallbacks() {
    stopCallbacks();
    const C = S.cb;
    if (S.page !== "callbacks" || C.busy) return;
    C.busy = true;
    let delay = CB_POLL_MS;
    try {
      const c = creds();
      if (!c.sdkappid || !c.identifier) {
        $("cb-state").textContent = "Choose an app and its admin above.";
      } else {
        const r = await adminCall("/_timserver/callbacks");
        if (r.ErrorCode !== 0) throw new ApiError(r);
        const first = C.listed === undefined;
        C.listed = r.Callback;
        if (!C.settings && (first || !hostedApp())) renderCallbackSettings(null);
        C.list = r.Deliveries;
        $("cb-list-error").textContent = "";
        $("cb-state").textContent = $("cb-live").checked ? "Live" : "Paused";
        renderCallbacks();
      }
    } catch (e) {
      showError($("cb-list-error"), `Cannot read the deliveries: ${e.message}`);
      $("cb-state").textContent = "";
      delay = 3000;
    } finally {
      C.busy = false;
    }
    if (S.page === "callbacks" && $("cb-live").checked && !document.hidden) C.timer = setTimeout(pollCallbacks, delay);
  }

  const OUTCOME_BADGE = { delivered: "badge-ok", failed: "badge-bad", queued: "badge-muted" };

  function renderCallbacks() {
    const C = S.cb;
    const rows = $("cb-rows");
    if (!C.list.length) {
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "empty", text: "No delivery yet. Set a callback URL, then cause an event: log a device in on the Accounts page, or call portrait_set." })));
    } else {
      rows.replaceChildren(...C.list.map((d) => h("tr", {
        class: `j-row${C.seen.has(d.Id) ? "" : " fresh"}${C.shown === d.Id ? " selected" : ""}`, "data-id": d.Id, "data-outcome": d.Outcome, tabindex: 0,
        "aria-label": `Show the ${d.CallbackCommand} delivery of ${fmtTime(d.Time, false)}`,
        onclick: () => showDelivery(d.Id), onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); showDelivery(d.Id); } },
      },
        h("td", { "data-label": "Time", class: "nowrap", title: fmtTime(d.Time), text: fmtTime(d.Time, false) }),
        h("td", { "data-label": "Command" }, h("code", { text: d.CallbackCommand })),
        h("td", { "data-label": "UserID" }, h("code", { class: "userid", text: d.UserID })),
        h("td", { "data-label": "URL", class: "truncate cb-url", title: d.Url, text: d.Url }),
        h("td", { "data-label": "Status" }, h("span", { class: `code-chip ${d.Status === 200 ? "" : "code-bad"} cb-status`, text: d.Status === null ? "—" : String(d.Status) })),
        h("td", { "data-label": "Latency", class: "num", text: d.LatencyMs === null ? "—" : `${d.LatencyMs.toFixed(1)} ms` }),
        h("td", { "data-label": "Outcome" }, h("span", { class: `badge ${OUTCOME_BADGE[d.Outcome] || "badge-muted"}`, text: d.Outcome })),
        h("td", { "data-label": "Error", class: "cb-error-cell", text: d.Error || "" }))));
    }
    for (const d of C.list) C.seen.add(d.Id);
    const failed = C.list.filter((d) => d.Outcome === "failed").length;
    const waiting = C.list.filter((d) => d.Outcome === "queued").length;
    $("cb-summary").textContent = C.list.length
      ? `${C.list.length} deliver${C.list.length === 1 ? "y" : "ies"} · ${failed} failed${waiting ? ` · ${waiting} waiting` : ""}`
      : "";
    if (C.shown !== null) showDelivery(C.shown, false);
  }

  /** One delivery in full: the URL (without Sign), the body sent and the receiver's answer. */
  function showDelivery(id, mark = true) {
    const d = S.cb.list.find((x) => x.Id === id);
    if (!d) return;
    S.cb.shown = id;
    if (mark) {
      for (const tr of document.querySelectorAll("#cb-rows tr.selected")) tr.classList.remove("selected");
      const row = document.querySelector(`#cb-rows tr[data-id="${CSS.escape(String(id))}"]`);
      if (row) row.classList.add("selected");
    }
    $("cb-detail").hidden = false;
    $("cb-detail-title").textContent = `${d.CallbackCommand} · ${d.UserID} · ${fmtTime(d.Time)}`;
    const dl = $("cb-detail-fields");
    dl.replaceChildren();
    const add = (k, v, mono) => dl.append(h("dt", { text: k }), h("dd", {}, mono ? h("code", { text: v }) : v));
    add("URL", `POST ${d.Url}`, true);
    add("Sign", "not shown (with a token, each delivery also carries Sign and RequestTime)");
    add("Outcome", h("span", {}, h("span", { class: `badge ${OUTCOME_BADGE[d.Outcome] || "badge-muted"}`, text: d.Outcome }), d.Error ? ` — ${d.Error}` : ""));
    add("HTTP status", d.Status === null ? "— (no answer)" : String(d.Status));
    add("Latency", d.LatencyMs === null ? "—" : `${d.LatencyMs.toFixed(2)} ms`);
    add("Event", `${fmtTime(d.Time)} · delivery ${d.Id}`);
    highlight($("cb-detail-body"), pretty(d.Body));
    const answer = $("cb-detail-answer");
    if (d.Status === null) { answer.textContent = d.Outcome === "queued" ? "(waiting to be sent)" : "(no answer)"; answer.classList.add("code-none"); }
    else if (!d.Answer) { answer.textContent = "(empty body)"; answer.classList.add("code-none"); }
    else { answer.classList.remove("code-none"); highlight(answer, pretty(d.Answer)); }
  }

  async function forgetDeliveries() {
    try {
      const r = await adminCall("/_timserver/callbacks/clear", { method: "POST", body: {} });
      if (r.ErrorCode !== 0) throw new ApiError(r);
      S.cb.list = [];
      S.cb.shown = null;
      $("cb-detail").hidden = true;
      renderCallbacks();
    } catch (e) { showError($("cb-list-error"), `Cannot clear the deliveries: ${e.message}`); }
  }

  // --- token -----------------------------------------------------------------------------------

  function takeTokenFromUrl() {
    const m = location.hash.match(/^#token=([^&]+)/);
    if (m) {
      const app = location.hash.match(/&app=(\d{1,10})(?:&|$)/);  // the app serve made or announced
      if (app) S.linkApp = app[1];
      S.token = decodeURIComponent(m[1]);
      sessionStorage.setItem(TOKEN_KEY, S.token);
      history.replaceState(null, "", `${location.pathname}${location.search}#/debugger`);
    }
  }

  function openTokenDialog() {
    $("token-input").value = "";
    $("token-error").textContent = "";
    $("token-dialog").showModal();
  }

  async function tokenDialogClosed() {
    const v = $("token-dialog").returnValue;
    if (v === "forget") {
      S.token = "";
      sessionStorage.removeItem(TOKEN_KEY);
    } else if (v === "save") {
      S.token = $("token-input").value.trim();
      sessionStorage.setItem(TOKEN_KEY, S.token);
    } else return;
    S.sigCache.clear();
    await loadApps();
    if (!S.tokenOk && signingMode() === "server") $("signing-key").checked = true;
    if (S.tokenOk && !$("sdkappid").value && S.apps.length) chooseApp(String(S.apps[0].SDKAppID));
    credsChanged();
  }

  /** Says at once, while typing, when a key cannot be one (64 hex characters). */
  function checkKey() {
    const key = $("key").value.trim();
    const bad = key && !/^[0-9a-fA-F]{64}$/.test(key);
    $("key").setAttribute("aria-invalid", bad ? "true" : "false");
    $("key-error").textContent = !bad ? "" : /[^0-9a-fA-F]/.test(key)
      ? "A key is 64 hexadecimal characters (0-9, a-f): this one has other characters."
      : `A key is 64 hexadecimal characters: this one has ${key.length}.`;
  }

  function chooseApp(sdkappid) {
    const app = S.apps.find((a) => String(a.SDKAppID) === sdkappid);
    $("sdkappid").value = sdkappid;
    if (app && !app.Admins.includes($("identifier").value.trim())) $("identifier").value = app.Admins[0];
  }

  // --- start -----------------------------------------------------------------------------------

  async function start() {
    takeTokenFromUrl();
    try {
      const before = Date.now() / 1000;
      S.meta = await api("/_timserver/console/meta", { token: true });
      S.skew = S.meta.Now - (before + Date.now() / 1000) / 2;
    } catch (e) {
      $("session-status").textContent = "Server unreachable";
      $("session-status").className = "pill pill-bad";
      return;
    }
    S.commands = S.meta.Commands;
    for (const e of S.meta.Errors) S.errors.set(e.ErrorCode, e);
    $("version").textContent = S.meta.Version;
    const sel = $("command-select");
    const groups = new Map();
    for (const c of S.commands) {
      if (!groups.has(c.Service)) groups.set(c.Service, h("optgroup", { label: c.Service }));
      groups.get(c.Service).append(h("option", { value: c.Path, text: `${c.Command} — ${c.Summary}` }));
    }
    sel.replaceChildren(...groups.values());
    const defaultCmd = S.commands.find((c) => c.Command === "account_check") || S.commands[0];
    sel.value = defaultCmd.Path;
    commandChanged();

    await loadApps();
    const p = loadPrefs();
    $("identifier").value = p.identifier || "administrator";
    $("endpoint-select").value = p.endpoint === "custom" ? "custom" : "self";
    $("endpoint-custom").value = p.custom || "";
    $("endpoint-custom-field").hidden = $("endpoint-select").value !== "custom";
    const useServer = S.tokenOk && p.signing !== "key";
    $(useServer ? "signing-server" : "signing-key").checked = true;
    // the app the link of `timserver serve` names, else the last one used here, else the first
    const hostedApp = (id) => id && S.apps.some((a) => String(a.SDKAppID) === id);
    if (hostedApp(S.linkApp)) chooseApp(S.linkApp);
    else if (p.sdkappid) $("sdkappid").value = p.sdkappid;
    else if (S.apps.length) chooseApp(String(S.apps[0].SDKAppID));
    syncAppSelect();
    renderHints();
    savePrefs();
    for (const c of S.commands) $("jf-command").append(h("option", { value: c.Command, text: c.Command }));
    renderHistory();

    // wiring
    $("app-select").addEventListener("change", (e) => { if (e.target.value) chooseApp(e.target.value); else $("sdkappid").focus(); credsChanged(); });
    for (const id of ["sdkappid", "identifier", "key"]) $(id).addEventListener("change", credsChanged);
    $("key").addEventListener("input", checkKey);
    $("history-clear").addEventListener("click", () => { localStorage.removeItem(HISTORY); renderHistory(); });
    for (const id of ["signing-server", "signing-key"]) $(id).addEventListener("change", credsChanged);
    $("endpoint-select").addEventListener("change", () => { $("endpoint-custom-field").hidden = $("endpoint-select").value !== "custom"; savePrefs(); });
    $("endpoint-custom").addEventListener("change", savePrefs);
    $("command-select").addEventListener("change", () => {
      commandChanged();
      const c = currentCommand();
      history.replaceState(null, "", `#${c.Path}`);
    });
    $("body-reset").addEventListener("click", commandChanged);
    $("body-format").addEventListener("click", () => {
      try { $("body-input").value = JSON.stringify(JSON.parse($("body-input").value), null, 2); $("debug-error").textContent = ""; } catch (e) { $("debug-error").textContent = `Not valid JSON: ${e.message}`; }
    });
    $("debug-form").addEventListener("submit", sendRequest);
    $("reveal-sig").addEventListener("change", renderSent);
    $("copy-curl").addEventListener("click", (e) => {
      if (!S.last) return;
      copyText(`curl -s -X POST ${shellQuote(S.last.url)} -d ${shellQuote(S.last.body)}`, e.target);
    });

    $("accounts-search").addEventListener("submit", (e) => { e.preventDefault(); loadAccounts(true); });
    $("acc-refresh").addEventListener("click", () => loadAccounts(false));
    $("acc-limit").addEventListener("change", () => loadAccounts(true));
    $("acc-prev").addEventListener("click", () => { if (S.acc.index > 0) { S.acc.index--; loadAccounts(false); } });
    $("acc-next").addEventListener("click", () => {
      if (!S.acc.next) return;
      S.acc.stack = S.acc.stack.slice(0, S.acc.index + 1);
      S.acc.stack.push(S.acc.next);
      S.acc.index++;
      loadAccounts(false);
    });
    $("acc-check-all").addEventListener("change", (e) => {
      for (const x of document.querySelectorAll(".acc-check:not(:disabled)")) x.checked = e.target.checked;
      updateSelection();
    });
    $("acc-delete-selected").addEventListener("click", () => { const ids = selectedIds(); if (ids.length) deleteAccounts(ids); });
    $("import-one").addEventListener("submit", (e) => {
      e.preventDefault();
      const item = { UserID: $("imp-userid").value.trim() };
      if (!item.UserID) { accMessage("error", "Type the UserID to import."); $("imp-userid").focus(); return; }
      if ($("imp-nick").value.trim()) item.Nick = $("imp-nick").value.trim();
      if ($("imp-face").value.trim()) item.FaceUrl = $("imp-face").value.trim();
      importAccounts([item], null);
    });
    $("import-list").addEventListener("submit", (e) => {
      e.preventDefault();
      let items;
      const here = $("imp-result");
      try { items = parseList($("imp-list").value); } catch (err) { accMessage("error", err.message, null, here); return; }
      if (!items.length) { accMessage("error", "The list is empty: one UserID per line.", null, here); return; }
      if (items.length > 100000) { accMessage("error", "At most 100,000 accounts per list.", null, here); return; }
      importAccounts(items, $("imp-progress"));
    });
    $("imp-file").addEventListener("change", (e) => {
      const f = e.target.files[0];
      if (!f) return;
      if (f.size > 8 * 1024 * 1024) { accMessage("error", "The file is larger than 8 MiB.", null, $("imp-result")); return; }
      const reader = new FileReader();
      reader.onload = () => { $("imp-list").value = String(reader.result); accMessage("info", `Loaded ${f.name}: press “Import list”.`, null, $("imp-result")); };
      reader.readAsText(f);
    });

    $("gen-form").addEventListener("submit", generate);
    $("gen-copy").addEventListener("click", (e) => copyText($("gen-sig").value, e.target));
    $("gen-explain").addEventListener("click", () => { $("exp-sig").value = $("gen-sig").value; explain(); });
    $("explain-form").addEventListener("submit", explain);

    $("j-live").addEventListener("change", () => { if ($("j-live").checked) pollJournal(); else { stopJournal(); $("j-state").textContent = "Paused"; } });
    for (const r of document.querySelectorAll('input[name="jscope"]')) r.addEventListener("change", () => { $("jf-app-field").hidden = journalScope() !== "all"; journalFiltersChanged(); });
    $("jf-app-field").hidden = true;
    $("j-filters").addEventListener("submit", (e) => { e.preventDefault(); journalFiltersChanged(); });
    $("jf-command").addEventListener("change", journalFiltersChanged);
    $("jf-reset").addEventListener("click", () => { for (const id of ["jf-command", "jf-code", "jf-user", "jf-app"]) $(id).value = ""; journalFiltersChanged(); });
    $("j-detail-close").addEventListener("click", () => { $("j-detail").hidden = true; S.journal.shown = null; renderJournal(); });
    $("j-clear").addEventListener("click", () => { S.journal.clearedAt = Math.max(...[...S.journal.entries.values()].map((e) => e.Time), S.journal.clearedAt); S.journal.entries.clear(); renderJournal(); });
    $("j-export").addEventListener("click", exportJournal);
    document.addEventListener("visibilitychange", () => { if (!document.hidden && S.page === "journal" && $("j-live").checked) pollJournal(); });

    $("cb-form").addEventListener("submit", submitCallback);
    $("cb-clear").addEventListener("click", clearCallback);
    $("cb-allow-delete").addEventListener("change", toggleAllowDelete);
    $("cb-live").addEventListener("change", () => { if ($("cb-live").checked) pollCallbacks(); else { stopCallbacks(); $("cb-state").textContent = "Paused"; } });
    $("cb-forget").addEventListener("click", forgetDeliveries);
    $("cb-detail-close").addEventListener("click", () => { $("cb-detail").hidden = true; S.cb.shown = null; renderCallbacks(); });
    document.addEventListener("visibilitychange", () => { if (!document.hidden && S.page === "callbacks" && $("cb-live").checked) pollCallbacks(); });

    $("token-open").addEventListener("click", openTokenDialog);
    $("token-dialog").addEventListener("close", tokenDialogClosed);

    window.addEventListener("hashchange", () => { takeTokenFromUrl(); route(); });
    route();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
