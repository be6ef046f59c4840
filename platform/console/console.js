// scf-local console: the snapshot from /console/api/state, kept live by the platform's events
// (/console/api/events, server-sent events); invocations and logs through the front door (/console/api/call).
"use strict";

const MAX_INVOCATIONS = 200;
const RETIRED_SHOWN_MS = 30000;

const state = {
  platform: {},
  functions: [],
  instances: new Map(), // id -> view, with .state
  starting: new Map(), // function + "#" + ticket -> {function, since}
  invocations: [], // newest first
  openRequest: null,
  clockSkew: 0,
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || "") }, text);
}

function clock(ms) {
  const d = new Date(ms);
  const p = (n, w) => String(n).padStart(w || 2, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function duration(ms) {
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms.toFixed(2) + " ms";
}

function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function mb(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}

function now() {
  return Date.now() + state.clockSkew;
}

function toast(text, kind) {
  const t = el("div", { class: "toast " + (kind || "") }, text);
  $("#toasts").append(t);
  setTimeout(() => t.remove(), 6000);
}

// ---- the snapshot --------------------------------------------------------------------------------------

async function refresh() {
  const r = await fetch("/console/api/state", { cache: "no-store" });
  if (!r.ok) {
    toast("the console could not read the platform's state: " + r.status, "err");
    return;
  }
  const s = await r.json();
  state.platform = s.platform;
  state.clockSkew = s.platform.now_ms - Date.now();
  state.functions = s.functions;
  const retired = [...state.instances.values()].filter((i) => i.state === "retired");
  state.instances = new Map();
  for (const i of s.instances) state.instances.set(i.id, { ...i, state: i.busy > 0 ? "busy" : "idle" });
  for (const i of retired) if (!state.instances.has(i.id)) state.instances.set(i.id, i);
  state.starting = new Map();
  for (const f of s.functions) {
    for (let n = 0; n < f.starting; n++) state.starting.set(f.name + "#snapshot" + n, { function: f.name, since: now() });
  }
  mergeInvocations(s.invocations, false);
  renderAll();
}

let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refresh();
  }, 250);
}

function mergeInvocations(list, fresh) {
  const byId = new Map(state.invocations.map((i) => [i.request_id + "/" + i.start_ms, i]));
  for (const i of list) {
    const key = i.request_id + "/" + i.start_ms;
    if (!byId.has(key)) byId.set(key, { ...i, fresh });
  }
  state.invocations = [...byId.values()].sort((a, b) => b.start_ms - a.start_ms).slice(0, MAX_INVOCATIONS);
}

// ---- rendering -----------------------------------------------------------------------------------------

function renderAll() {
  renderPlatform();
  renderFunctions();
  renderInstances();
  renderInvocations();
  renderInvokeChoices();
}

function renderPlatform() {
  const p = state.platform;
  $("#platform-facts").replaceChildren(
    el("b", {}, location.host),
    ` · up ${age(now() - p.started_ms)} · signatures ${p.signatures ? "verified" : "not checked"}` +
      (p.watching ? " · reload on save" : "")
  );
}

function renderFunctions() {
  const rows = state.functions.map((f) =>
    el(
      "tr",
      { "data-function": f.name },
      el("td", { class: "name", title: f.code_dir }, f.name, f.debug ? " " : null, f.debug ? badge("debug", "cold") : null),
      el("td", {}, f.kind === "event" ? f.runtime : f.kind),
      el("td", { class: "mono" }, f.handler),
      el("td", { class: "num" }, f.memory_mb + " MB"),
      el("td", { class: "num", title: "init timeout " + f.init_timeout_s + " s" }, f.timeout_s + " s"),
      el("td", { class: "num", title: `provisioned ${f.provisioned}, ${f.instance_concurrency} per instance` }, String(f.concurrency)),
      el("td", {}, ...f.triggers.map((t) => el("span", { class: "chip" }, t))),
      el("td", { class: "num", "data-queue": f.queue }, f.kind === "event" ? String(f.queue) : "—"),
      el(
        "td",
        { class: "num", "data-dead-letters": f.dead_letters },
        f.dead_letters > 0
          ? el("button", { class: "link", type: "button", onclick: () => openLetters(f.name) }, String(f.dead_letters))
          : f.kind === "event" ? "0" : "—"
      )
    )
  );
  $("#functions tbody").replaceChildren(...rows);
}

function renderInstances() {
  const t = now();
  for (const [id, i] of state.instances) {
    if (i.state === "retired" && t - i.retiredAt > RETIRED_SHOWN_MS) state.instances.delete(id);
  }
  const order = { starting: 0, busy: 1, idle: 2, retired: 3 };
  const starting = [...state.starting.values()].map((s) =>
    el(
      "tr",
      { "data-state": "starting", "data-function": s.function },
      el("td", { class: "name" }, s.function),
      el("td", { class: "mono" }, "…"),
      el("td", {}, ""),
      el("td", {}, badge("cold starting", "starting")),
      el("td", {}, ""),
      el("td", { class: "num" }, age(t - s.since)),
      el("td", {}, "")
    )
  );
  const running = [...state.instances.values()]
    .sort((a, b) => order[a.state] - order[b.state] || a.function.localeCompare(b.function) || a.started_ms - b.started_ms)
    .map((i) => {
      const label = i.state === "busy" ? (i.capacity > 1 ? `busy ${i.busy}/${i.capacity}` : "busy")
        : i.state === "idle" ? "warm idle" : "retired (" + (i.why || "gone") + ")";
      return el(
        "tr",
        { "data-instance": i.id, "data-state": i.state, "data-function": i.function, class: i.state === "retired" ? "retired" : "" },
        el("td", { class: "name" }, i.function),
        el("td", { class: "mono", title: i.id }, i.id.slice(0, 8)),
        el("td", { class: "mono" }, String(i.pid)),
        el("td", {}, badge(label, i.state), i.provisioned ? " " : null, i.provisioned ? badge("provisioned") : null, i.debug ? " " : null, i.debug ? badge("debug", "cold") : null),
        el("td", { class: "num" }, mb(i.memory)),
        el("td", { class: "num" }, age((i.state === "retired" ? i.retiredAt : t) - i.started_ms)),
        el("td", { class: "num" }, duration(i.cold_start_ms))
      );
    });
  $("#instances tbody").replaceChildren(...starting, ...running);
  const live = running.length - [...state.instances.values()].filter((i) => i.state === "retired").length;
  $("#instances-count").textContent = `${live} running` + (starting.length ? `, ${starting.length} starting` : "");
  $("#instances-empty").hidden = starting.length + running.length > 0;
}

function renderInvocations() {
  const rows = state.invocations.map((i) => {
    const ok = i.ret_code === 0;
    const tr = el(
      "tr",
      {
        "data-request-id": i.request_id,
        "data-function": i.function,
        class: (i.fresh ? "new " : "") + (state.openRequest === i.request_id ? "open" : ""),
        onclick: () => openLog(i),
      },
      el("td", { class: "mono" }, clock(i.start_ms)),
      el("td", { class: "name" }, i.function),
      el("td", {}, i.trigger + (i.retry_num > 0 ? ` (retry ${i.retry_num})` : "")),
      el("td", { class: "mono", title: i.request_id }, i.request_id.slice(0, 13) + "…"),
      el("td", { title: i.error || "" }, badge(i.status, ok ? "ok" : "err")),
      el("td", { class: "num" }, i.trigger === "provisioned" ? "" : duration(i.duration_ms)),
      el("td", {}, badge(i.cold ? "cold" : "warm", i.cold ? "cold" : ""))
    );
    i.fresh = false;
    return tr;
  });
  $("#invocations tbody").replaceChildren(...rows);
  $("#invocations-empty").hidden = rows.length > 0;
}

function renderInvokeChoices() {
  const select = $("#invoke-function");
  const chosen = select.value;
  const options = state.functions.map((f) =>
    el(
      "option",
      { value: f.name, disabled: f.kind === "web", selected: f.name === chosen },
      f.kind === "web" ? `${f.name} (web: send HTTP to /web/${f.name}/)` : f.name
    )
  );
  select.replaceChildren(...options);
  if (!chosen || select.value === "" || select.selectedOptions[0]?.disabled) {
    const first = state.functions.find((f) => f.kind !== "web");
    if (first) select.value = first.name;
  }
}

function logLines(pre, text) {
  const spans = (text || "").split("\n").filter((l, n, all) => l !== "" || n < all.length - 1).map((line) => {
    const platform = /^(START|END|Report|Init Report|Provisioned Report|Response) RequestId/.test(line);
    const error = /^ERROR RequestId/.test(line);
    return el("span", { class: platform ? "platform" : error ? "error" : "" }, line + "\n");
  });
  pre.replaceChildren(...spans);
}

// ---- events --------------------------------------------------------------------------------------------

function onEvent(e) {
  switch (e.type) {
    case "instance_starting":
      state.starting.set(e.function + "#" + e.ticket, { function: e.function, since: now() });
      renderInstances();
      break;
    case "instance_started": {
      state.starting.delete(e.instance.function + "#" + e.ticket);
      // A snapshot taken while this start was running counted it anonymously.
      for (const k of state.starting.keys()) {
        if (k.startsWith(e.instance.function + "#snapshot")) {
          state.starting.delete(k);
          break;
        }
      }
      state.instances.set(e.instance.id, { ...e.instance, state: e.instance.busy > 0 ? "busy" : "idle" });
      renderInstances();
      break;
    }
    case "instance_failed":
      state.starting.delete(e.function + "#" + e.ticket);
      renderInstances();
      toast(`${e.function}: an instance failed to start: ${e.error}`, "err");
      break;
    case "instance_busy": {
      const i = state.instances.get(e.id);
      if (i) Object.assign(i, { busy: e.busy, state: "busy" });
      renderInstances();
      break;
    }
    case "instance_idle": {
      const i = state.instances.get(e.id);
      if (i) Object.assign(i, { busy: 0, state: "idle", memory: e.memory });
      renderInstances();
      break;
    }
    case "instance_retired": {
      const i = state.instances.get(e.id);
      if (i) Object.assign(i, { state: "retired", why: e.why, retiredAt: now() });
      renderInstances();
      break;
    }
    case "invocation":
      mergeInvocations([e], true);
      renderInvocations();
      if (e.trigger === "async") refreshSoon();
      break;
    case "queue":
      refreshSoon();
      break;
    case "reload":
      toast(
        `${e.function}: ${e.changed.join(", ") || "a change"}: ${e.outcome}` +
          (e.outcome === "reloaded" ? ` (${e.retired} retired, ${e.draining} finishing first)` : "") +
          (e.detail ? " — " + e.detail.split("\n").slice(-3).join(" ") : ""),
        e.outcome === "reloaded" ? "" : "err"
      );
      refreshSoon();
      break;
    default:
      break;
  }
}

function connect() {
  const live = $("#live");
  const source = new EventSource("/console/api/events");
  source.addEventListener("hello", () => {
    live.className = "live on";
    live.querySelector("span").textContent = "live";
    refresh();
  });
  source.addEventListener("resync", () => refresh());
  source.onmessage = (m) => {
    try {
      onEvent(JSON.parse(m.data));
    } catch (err) {
      console.error(err);
    }
  };
  source.onerror = () => {
    live.className = "live off";
    live.querySelector("span").textContent = "reconnecting";
  };
}

// ---- calls through the front door ----------------------------------------------------------------------

async function call(action, params) {
  const r = await fetch("/console/api/call", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-TC-Action": action, "X-TC-Version": "2018-04-16" },
    body: JSON.stringify(params),
  });
  const v = await r.json();
  return v.Response;
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) {
    return text;
  }
}

async function invoke(ev) {
  ev.preventDefault();
  const fn = $("#invoke-function").value;
  const text = $("#invoke-event").value.trim() || "{}";
  const type = document.querySelector("input[name=type]:checked").value;
  const out = $("#invoke-result");
  try {
    JSON.parse(text);
  } catch (err) {
    out.hidden = false;
    $("#invoke-status").replaceChildren(badge("not sent", "err"), " the event is not JSON: " + err.message);
    $("#invoke-body").textContent = "";
    $("#invoke-log").replaceChildren();
    return;
  }
  const button = $("#invoke-button");
  button.disabled = true;
  $("#invoke-status").replaceChildren(badge("running", "busy"), ` ${fn}…`);
  out.hidden = false;
  try {
    const r = await call("Invoke", { FunctionName: fn, ClientContext: text, InvocationType: type, LogType: "Tail" });
    if (r.Error) {
      $("#invoke-status").replaceChildren(badge(r.Error.Code, "err"));
      $("#invoke-body").textContent = r.Error.Message;
      $("#invoke-log").replaceChildren();
      out.removeAttribute("data-request-id");
      return;
    }
    const res = r.Result;
    out.setAttribute("data-request-id", res.FunctionRequestId);
    if (type === "Event") {
      $("#invoke-status").replaceChildren(badge("queued", "busy"), ` request ${res.FunctionRequestId}`);
      $("#invoke-body").textContent = "Accepted into the async queue; it appears under Invocations when it has run.";
      $("#invoke-log").replaceChildren();
      return;
    }
    const ok = res.InvokeResult === 0;
    $("#invoke-status").replaceChildren(
      badge(ok ? "ok" : "error", ok ? "ok" : "err"),
      ` ${duration(res.Duration)} · ${mb(res.MemUsage)} · request `,
      el("span", { class: "mono" }, res.FunctionRequestId)
    );
    $("#invoke-body").textContent = pretty(ok ? res.RetMsg : res.ErrMsg);
    logLines($("#invoke-log"), res.Log);
  } catch (err) {
    $("#invoke-status").replaceChildren(badge("failed", "err"), " " + err.message);
  } finally {
    button.disabled = false;
  }
}

async function openLog(i) {
  state.openRequest = i.request_id;
  renderInvocations();
  const card = $("#detail-card");
  card.hidden = false;
  card.setAttribute("data-request-id", i.request_id);
  $("#detail-title").textContent = i.trigger === "provisioned" ? `Provisioned instance of ${i.function}` : `Request ${i.request_id}`;
  $("#detail-facts").replaceChildren(
    el("b", {}, i.function),
    ` · ${i.trigger} · ${i.status} · ${duration(i.duration_ms)} · ${i.cold ? "cold" : "warm"} · ${mb(i.mem_usage)} · ${clock(i.start_ms)}`
  );
  $("#detail-log").textContent = "loading…";
  const r = await call("GetFunctionLogs", { FunctionName: i.function, FunctionRequestId: i.request_id, Limit: 5 });
  if (state.openRequest !== i.request_id) return;
  const rec = r.Data && r.Data.find((d) => d.StartTime !== undefined);
  if (!rec) {
    $("#detail-log").textContent = r.Error ? r.Error.Message : "no log stored for this request (yet)";
    return;
  }
  logLines($("#detail-log"), rec.Log);
}

async function openLetters(fn) {
  state.openRequest = null;
  renderInvocations();
  const card = $("#detail-card");
  card.hidden = false;
  card.removeAttribute("data-request-id");
  $("#detail-title").textContent = `Dead letters of ${fn}`;
  const r = await fetch("/console/api/dlq?function=" + encodeURIComponent(fn));
  const v = await r.json();
  $("#detail-facts").textContent = `${v.total} in all` + (v.total > v.letters.length ? `, the newest ${v.letters.length} shown` : "");
  $("#detail-log").textContent = v.letters.map((l) => JSON.stringify(l, null, 2)).join("\n\n");
}

document.addEventListener("DOMContentLoaded", () => {
  $("#invoke-form").addEventListener("submit", invoke);
  refresh();
  connect();
  setInterval(() => {
    renderPlatform();
    renderInstances();
  }, 1000);
});
