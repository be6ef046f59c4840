'use strict';
// Console lines in SCF's Node format: `<ISO-8601 ms Z>\t<requestId>\t<message>` (util.format rules).
// Every level goes to stdout so that one request's lines keep their order; `process.stdout.write` stays raw.
// On Linux, writes to pipes and files are synchronous in Node, so nothing printed is lost if the process
// exits right after printing.

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

module.exports = { install, setRequestId, line };
