'use strict';
// The event's string as the add-on makes it (src/text.rs, `event_string` in src/event.rs), end to end on the real
// platform (`scf-local invoke`, the checkout's scf-shim and add-on): ASCII text as it is, mostly-ASCII text with
// its non-ASCII characters escaped, other text as UTF-16, each copied into V8, small or large. Every
// form must reach the handler as exactly the value `JSON.parse` gives for the original text, and text that is
// not JSON must stay an InvalidEvent (400) whatever form it took.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const SCF_LOCAL = process.env.SCF_LOCAL || path.join(REPO, 'target', 'debug', 'scf-local');

const code = fs.mkdtempSync(path.join(os.tmpdir(), 'scf-event-string-'));
fs.writeFileSync(path.join(code, 'index.js'), 'exports.echo = async (event) => event;\n');
test.after(() => fs.rmSync(code, { recursive: true, force: true }));

/** One invocation of the echo handler with `text` as the event: exit status and the caller's body. */
function invoke(text) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(SCF_LOCAL, ['invoke', code, '--handler', 'index.echo', '--runtime', 'nodejs', '--event-file', '-'], {
    input: text,
    env,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 60_000,
  });
  assert.equal(r.error, undefined, `${SCF_LOCAL}: ${r.error} (build it: make build)`);
  return { status: r.status, body: r.stdout, log: r.stderr };
}

/** Records, `n` of them, each carrying `word` among ASCII fields. */
function records(n, word) {
  const list = [];
  for (let i = 0; i < n; i++) list.push({ id: i, key: `bucket/path/${i}.txt`, tags: ['alpha', word, 'quote"d', 'line\nbreak'], ok: i % 2 === 0 });
  return JSON.stringify({ Records: list });
}

const cases = {
  'ASCII, small': '{"k":"v","n":[1,2.5,null,true]}',
  'ASCII, 1 MB': records(9000, 'plain'),
  'mostly ASCII with non-ASCII, small (escaped)': '{"name":"世界 😀","é":"ünï","esc":"\\\\é"}',
  'mostly ASCII with non-ASCII, 1 MB (escaped)': records(9000, '中文 emoji😀 ünï'),
  'mostly non-ASCII, small (UTF-16)': JSON.stringify({ text: '中文字符'.repeat(40) }),
  'mostly non-ASCII, 1 MB (UTF-16)': JSON.stringify({ text: '中文字符😀'.repeat(60000), n: 1 }),
};

for (const [name, text] of Object.entries(cases)) {
  test(`${name}: the handler gets the value JSON.parse gives`, () => {
    const r = invoke(text);
    assert.equal(r.status, 0, r.log.slice(-2000));
    assert.deepEqual(JSON.parse(r.body), JSON.parse(text));
  });
}

test('text that is not JSON stays InvalidEvent (400) in every form, and an escaped backslash stays one', () => {
  for (const text of ['{"a":"\\é"}', '{"a":"\\\\\\é"}', '{"a":1}é', '[1,é]', `${records(2000, 'ünï')}é`]) {
    const r = invoke(text);
    assert.equal(r.status, 1, `${text.slice(0, 40)}: ${r.body}`);
    const body = JSON.parse(r.body);
    assert.equal(body.errorType, 'InvalidEvent', r.body);
    assert.equal(body.statusCode, 400, r.body);
  }
  const ok = invoke('{"a":"\\\\é"}');
  assert.equal(ok.status, 0, ok.log);
  assert.deepEqual(JSON.parse(ok.body), { a: '\\é' });
});
