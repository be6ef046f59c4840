'use strict';
// The conformance suite's handlers in Node.js (CommonJS): one export per case, named after the case.
// tests/conformance/README.md says what each must do. The handler of case `<case>` is `conformance.<case>`.
const fs = require('fs');
const os = require('os');
const path = require('path');

const echo = async (event) => event;
for (const name of [
  'echo_nested', 'echo_empty_object', 'echo_empty_containers', 'echo_string_event', 'echo_array_event',
  'echo_unicode_bmp', 'echo_unicode_astral', 'echo_unicode_escaped_input', 'echo_escapes', 'echo_control_chars',
  'echo_html_chars', 'echo_duplicate_keys', 'echo_large_1mb', 'number_big_integer', 'number_above_2_53',
  'number_floats', 'number_negative_zero', 'number_extremes', 'error_invalid_event', 'error_invalid_event_nan',
  'echo_nested_100_deep',
]) {
  exports[name] = echo;
}

exports.event_near_6mb = async (event) => {
  const data = event.data;
  return { length: data.length, head: data.slice(0, 8), tail: data.slice(-8) };
};

exports.return_string = async () => 'Hello World';
exports.return_number = async () => 42;
exports.return_float = async () => 3.25;
exports.return_bool = async () => true;
exports.return_null = async () => null;
exports.return_nothing = () => {};
exports.return_list = async () => [1, 'two', null, true, { three: 3 }];
exports.return_key_order = async () => ({ zeta: 1, alpha: 2, mid: { y: 1, x: 2 } });
exports.return_unicode = async () => 'héllo 世界 😀 <&> \u2028';

const jsonType = (v) => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v; // string, boolean, object
};

exports.context_fields = async (event, context) =>
  Object.fromEntries(Object.keys(context).map((k) => [k, jsonType(context[k])]));

exports.context_values = async (event, context) => {
  const keys = ['function_name', 'namespace', 'function_version', 'memory_limit_in_mb', 'time_limit_in_ms',
    'request_id', 'tencentcloud_region', 'tencentcloud_appid', 'tencentcloud_uin'];
  return Object.fromEntries(keys.map((k) => [k, context[k]]));
};

exports.context_environment = async (event, context) => {
  const env = JSON.parse(context.environment);
  return {
    APP_MODE: env.APP_MODE ?? null,
    EMPTY_VALUE: env.EMPTY_VALUE ?? null,
    WITH_EQUALS: env.WITH_EQUALS ?? null,
    SCF_NAMESPACE: env.SCF_NAMESPACE ?? null,
    environ_has_app_mode: context.environ.split(';').includes('APP_MODE=conformance'),
  };
};

exports.env_from_config = async () => ({
  GREETING: process.env.GREETING ?? null,
  EMPTY_VALUE: process.env.EMPTY_VALUE ?? null,
  UNICODE_VALUE: process.env.UNICODE_VALUE ?? null,
  NOT_SET: process.env.CONFORMANCE_NOT_SET ?? null,
});

exports.env_platform = async () => {
  const keys = ['SCF_FUNCTIONNAME', 'SCF_NAMESPACE', 'SCF_FUNCTIONVERSION', 'TENCENTCLOUD_REGION', 'TENCENTCLOUD_RUNENV'];
  return Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null]));
};

let count = 0;

exports.warm_globals = async () => ({ count: ++count });

exports.warm_tmp_dir = async () => {
  const file = path.join(os.tmpdir(), 'conformance-warm.txt');
  fs.appendFileSync(file, 'x\n');
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length;
  const tmpdir = process.env.TMPDIR ?? '';
  return { lines, in_tmpdir: tmpdir !== '' && file.startsWith(tmpdir) };
};

exports.warm_after_error = async (event) => {
  const n = ++count;
  if (event.fail) throw new Error('requested failure');
  return { count: n };
};

exports.fresh_after_exit = async (event) => {
  const n = ++count;
  if (event.exit) process.exit(3);
  return { count: n };
};

exports.error_uncaught = async () => {
  throw new Error('conformance failure');
};

exports.error_returned = (event, context, callback) => {
  callback(new Error('refused on purpose'));
};

exports.error_not_callable = 42;

exports.error_marshal = async () => 10n;

exports.error_marshal_cycle = async () => {
  const a = {};
  a.self = a;
  return a;
};

exports.error_nan = async () => ({ value: NaN });

exports.error_timeout = async () => {
  process.stdout.write('started\n');
  await new Promise((resolve) => setTimeout(resolve, 10000));
  return 'woke up';
};

exports.error_memory = async () => {
  const block = Buffer.alloc(256 * 1024 * 1024, 1);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  return block.length;
};

exports.error_process_exit = async () => {
  process.stdout.write('exiting with status 3\n');
  process.exit(3);
};

exports.error_response_too_large = async () => 'x'.repeat(7 * 1024 * 1024);

exports.error_message_escaping = async () => {
  throw new Error('bad <input> & \u2028');
};

exports.logs_in_order = async () => {
  process.stdout.write('first\n');
  process.stderr.write('second\n');
  process.stdout.write('third\n');
  process.stderr.write('fourth\n');
  return 'done';
};

exports.logs_before_exception = async () => {
  process.stdout.write('last words before the exception\n');
  throw new Error('failing after printing');
};

exports.logs_long_line = async () => {
  process.stdout.write('x'.repeat(10000) + '\n');
  process.stdout.write('after\n');
  return 'done';
};

exports.logs_unicode = async () => {
  process.stdout.write('héllo 世界 😀\n');
  return 'done';
};

exports.logs_console_format = async () => {
  console.log('via %s', 'console.log');
  return 'done';
};

exports.async_handler = async () => {
  await new Promise((resolve) => setImmediate(resolve));
  return { awaited: true };
};

exports.logs_many_lines = async (event) => {
  const n = Number(event.lines);
  const width = Number(event.width);
  for (let i = 0; i < n; i++) {
    const head = `line ${i} `;
    process.stdout.write(head + 'x'.repeat(width - head.length) + '\n');
  }
  return { printed: n };
};
