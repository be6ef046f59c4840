// Drives the web console of a running `scf-local serve` in headless Chromium over the DevTools protocol
// (tests/tests/console.rs runs it): the page loads and goes live, the functions are listed, an invocation
// from the form answers, the invocation and its new warm instance appear live, and its row opens its log.
//
//   node --experimental-websocket tests/console/drive.mjs CONSOLE_URL FUNCTION [SCREENSHOT_DIR]
//
// Prints one JSON line of what it saw and exits 0, or prints what it was waiting for and exits 1. Every
// wait polls the page's state; the only deadline is a generous one that turns a hang into a failure.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, fn, shots] = process.argv.slice(2);
if (!url || !fn) {
  console.error("usage: drive.mjs CONSOLE_URL FUNCTION [SCREENSHOT_DIR]");
  process.exit(2);
}
const CHROMIUM = process.env.SCF_CHROMIUM || "/usr/bin/chromium";
const DEADLINE_MS = 120_000;

const profile = mkdtempSync(join(tmpdir(), "scf-console-chromium-"));
const browser = spawn(
  CHROMIUM,
  [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,900",
    "--remote-debugging-port=0",
    `--user-data-dir=${profile}`,
    "about:blank",
  ],
  { stdio: ["ignore", "ignore", "pipe"] }
);
let browserErr = "";
browser.stderr.on("data", (d) => {
  browserErr = (browserErr + d).slice(-4000);
});
browser.on("error", (e) => fail(`cannot start ${CHROMIUM} (apt-get install chromium): ${e.message}`));

function cleanup() {
  browser.kill("SIGKILL");
  try {
    rmSync(profile, { recursive: true, force: true });
  } catch {
    // The profile is in the temporary directory either way.
  }
}

function fail(why) {
  console.error(`console test: ${why}\nchromium said: ${browserErr}`);
  cleanup();
  process.exit(1);
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined/false. */
async function until(what, probe) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false && v !== null) return v;
    if (Date.now() > end) fail(`no ${what}`);
    await pause(50);
  }
}

// The browser writes its DevTools port into the profile once it listens.
const portFile = join(profile, "DevToolsActivePort");
const port = await until("DevTools port from chromium", () =>
  existsSync(portFile) ? readFileSync(portFile, "utf8").split("\n")[0] || undefined : undefined
);
const targets = await until("page target", async () => {
  const r = await fetch(`http://127.0.0.1:${port}/json/list`).catch(() => undefined);
  const list = r ? await r.json() : [];
  return list.find((t) => t.type === "page");
});

const ws = new WebSocket(targets.webSocketDebuggerUrl);
await new Promise((ok, no) => {
  ws.onopen = ok;
  ws.onerror = () => no(new Error("the DevTools WebSocket failed"));
});
let nextId = 0;
const waiting = new Map();
const consoleErrors = [];
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && waiting.has(msg.id)) {
    waiting.get(msg.id)(msg);
    waiting.delete(msg.id);
  } else if (msg.method === "Runtime.exceptionThrown") {
    consoleErrors.push(msg.params.exceptionDetails.text);
  } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
    consoleErrors.push(msg.params.entry.text + " " + (msg.params.entry.url || ""));
  }
};
function cdp(method, params = {}) {
  const id = ++nextId;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise((ok) => waiting.set(id, ok)).then((msg) => {
    if (msg.error) fail(`${method}: ${msg.error.message}`);
    return msg.result;
  });
}
/** Evaluates `expr` in the page; returns its value. */
async function page(expr) {
  const r = await cdp("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) fail(`${expr}: ${r.exceptionDetails.text}`);
  return r.result.value;
}
async function shot(name) {
  if (!shots) return;
  const { data } = await cdp("Page.captureScreenshot", { format: "png" });
  writeFileSync(join(shots, name), Buffer.from(data, "base64"));
}

await cdp("Page.enable");
await cdp("Runtime.enable");
await cdp("Log.enable");
// Anything the page asks of another host shows here: the console fetches nothing outside loopback.
const requested = [];
await cdp("Network.enable");
ws.addEventListener("message", (m) => {
  const msg = JSON.parse(m.data);
  if (msg.method === "Network.requestWillBeSent") requested.push(msg.params.request.url);
});
await cdp("Emulation.setDeviceMetricsOverride", { width: 1440, height: 900, deviceScaleFactor: 1, mobile: false });
await cdp("Page.navigate", { url });

// Loaded, live, the functions listed.
await until("live indicator", () => page(`document.querySelector("#live")?.classList.contains("on")`));
const functions = await until("functions table", () =>
  page(`(() => { const r = [...document.querySelectorAll("#functions tbody tr")].map((t) => t.dataset.function);
                 return r.length ? r : undefined; })()`)
);
if (!functions.includes(fn)) fail(`${fn} is not among the functions: ${functions}`);
await shot("console-start.png");

// Invoke from the form.
await page(`(() => {
  document.querySelector("#invoke-function").value = ${JSON.stringify(fn)};
  document.querySelector("#invoke-event").value = '{"name": "the browser"}';
  document.querySelector("#invoke-form").requestSubmit();
})()`);
const result = await until("invocation result in the form", () =>
  page(`(() => { const r = document.querySelector("#invoke-result");
                 const body = document.querySelector("#invoke-body").textContent;
                 return !r.hidden && body ? { status: document.querySelector("#invoke-status").textContent, body,
                   log: document.querySelector("#invoke-log").textContent } : undefined; })()`)
);

// The invocation and the warm instance it left appear live.
const invocation = await until("invocation row", () =>
  page(`(() => { const t = document.querySelector('#invocations tbody tr[data-function=${JSON.stringify(fn)}]');
                 return t ? { request_id: t.dataset.requestId, text: t.innerText } : undefined; })()`)
);
const instance = await until("warm idle instance row", () =>
  page(`(() => { const t = document.querySelector('#instances tbody tr[data-function=${JSON.stringify(fn)}][data-state="idle"]');
                 return t ? t.innerText : undefined; })()`)
);
await shot("console-invoked.png");

// Its row opens its full log.
await page(`document.querySelector('#invocations tbody tr[data-request-id=${JSON.stringify(invocation.request_id)}]').click()`);
const log = await until("the invocation's log", () =>
  page(`(() => { const c = document.querySelector("#detail-card"); const l = document.querySelector("#detail-log").textContent;
                 return !c.hidden && l.includes("END RequestId") ? l : undefined; })()`)
);
await shot("console-log.png");

const foreign = requested.filter((u) => !/^(https?|wss?):\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(u) && !u.startsWith("data:"));
console.log(JSON.stringify({ functions, result, invocation, instance, log, foreign, errors: consoleErrors }));
cleanup();
process.exit(0);
