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

/** Replaces the console's printing methods (production bootstrap only). Lines go to `stream`, or to
 * `process.stdout` as it is when a line is printed (so an instance that prints nothing never makes it). */
function install(stream) {
  const out = () => stream || process.stdout;
  for (const level of LEVELS) {
    // eslint-disable-next-line no-console
    console[level] =
      level === 'trace'
        ? (...args) => {
            const err = { name: 'Trace', message: util.format(...args) };
            Error.captureStackTrace(err, console.trace);
            out().write(line([err.stack]));
          }
        : (...args) => {
            out().write(line(args));
          };
  }
}

/** Makes writes to `streams` blocking (see above). */
function blockingStdio(streams = [process.stdout, process.stderr]) {
  for (const s of streams) {
    // A pipe, socket or TTY has a libuv handle that can block; a file is written synchronously already.
    if (s && s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
  }
}

/**
 * Makes `process.stdout` and `process.stderr` blocking when they are first used (production bootstrap only).
 * Node makes each stream on first access of its property; making both at start-up (a pipe's stream brings
 * the socket machinery) cost an instance ~1 MB of memory and time before ready even if it never prints. So
 * each property is wrapped: its first access makes Node's stream, makes it blocking, and puts it in place of
 * the wrapper. Every write still goes through a blocking stream.
 */
function blockingStdioOnFirstUse() {
  for (const name of ['stdout', 'stderr']) {
    const own = Object.getOwnPropertyDescriptor(process, name);
    if (!own || typeof own.get !== 'function' || !own.configurable) {
      blockingStdio([process[name]]);
      continue;
    }
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: own.enumerable,
      get() {
        const stream = own.get.call(process);
        blockingStdio([stream]);
        Object.defineProperty(process, name, { configurable: true, enumerable: own.enumerable, writable: true, value: stream });
        return stream;
      },
    });
  }
}

module.exports = { install, setRequestId, line, blockingStdio, blockingStdioOnFirstUse };
