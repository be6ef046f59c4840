'use strict';
// Console lines in SCF's Node format: `<ISO-8601 ms Z>\t<requestId>\t<message>` (util.format rules).
// Every level goes to stdout so that one request's lines keep their order; `process.stdout.write` stays raw.
//
// The instance's stdout and stderr are one pipe, and libuv makes a pipe non-blocking: once the pipe is full
// (the platform reads it as fast as it can, but 1 MB printed at once is more than its 64 KB), Node queues the
// rest of a write and finishes it later, on the event loop — after the result was posted, so those lines
// would land in no request's log. `blockingStdio()` makes every write to stdout/stderr finish before it
// returns (libuv's blocking mode, `uv_stream_set_blocking`): every line printed before the result is in the
// pipe when the result is posted, and a function that prints faster than the log is read waits for it.

const util = require('node:util');

let requestId = '';

/** The request id stamped on console lines ('' during init). */
function setRequestId(id) {
  requestId = id;
}

function line(args) {
  return `${new Date().toISOString()}\t${requestId}\t${util.format(...args)}\n`;
}

const LEVELS = ['log', 'info', 'warn', 'error', 'debug', 'trace'];

/** Replaces the console's printing methods (production bootstrap only). */
function install(stream = process.stdout) {
  for (const level of LEVELS) {
    // eslint-disable-next-line no-console
    console[level] =
      level === 'trace'
        ? (...args) => {
            const err = { name: 'Trace', message: util.format(...args) };
            Error.captureStackTrace(err, console.trace);
            stream.write(line([err.stack]));
          }
        : (...args) => {
            stream.write(line(args));
          };
  }
}

/** Makes writes to the process's stdout and stderr blocking (production bootstrap only; see above). */
function blockingStdio(streams = [process.stdout, process.stderr]) {
  for (const s of streams) {
    // A pipe, socket or TTY has a libuv handle that can block; a file is written synchronously already.
    if (s && s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
  }
}

module.exports = { install, setRequestId, line, blockingStdio };
