'use strict';
// One handler per error class, with the status code the caller sees.
//   scf-local invoke examples/node-errors --handler index.throws --runtime nodejs

exports.throws = async () => {
  throw new TypeError('something went wrong'); // 430 UnhandledError, stackTrace = err.stack
};
exports.throws_string = async () => {
  throw 'a plain string'; // 430 UnhandledError, stackTrace "Uncaught 'a plain string'"
};
exports.throws_undefined = () => {
  throw undefined; // 430 UnhandledError, stackTrace "Uncaught undefined"
};
exports.callback_error = (event, context, callback) => {
  callback(new Error('refused on purpose')); // 430 HandledError
};
exports.context_fail = (event, context) => {
  context.fail('bad input'); // 430 HandledError, stackTrace "bad input"
};
exports.cycle = async () => {
  const o = {};
  o.self = o;
  return o; // 430 MarshalError "Unable to marshal response: Converting circular structure to JSON …"
};
exports.bigint = async () => 1n; // 430 MarshalError "… Do not know how to serialize a BigInt"
exports.never_settles = () => new Promise(() => {}); // 430 UnhandledError once the event loop is empty
exports.callback_never_called = (event, context, callback) => {}; // 430 UnhandledError likewise
exports.sleeps = (event) => new Promise((resolve) => setTimeout(resolve, (event.seconds ?? 5) * 1000)); // 433
exports.exits = async () => {
  console.log('about to exit');
  process.exit(2); // 439 ProcessExit
};
exports.too_large = async () => 'x'.repeat(7 * 1024 * 1024); // 407 ResponseTooLarge
exports.crash_after_response = async () => {
  setTimeout(() => {
    throw new Error('crash after the response');
  }, 50);
  return 'answered'; // the result is posted; the crash is logged and the instance exits
};
exports.allocates = async (event) => {
  const chunks = [];
  for (let i = 0; i < (event.mb ?? 400); i += 16) chunks.push(Buffer.alloc(16 * 1024 * 1024, 1)); // 434
  return chunks.length;
};
exports.not_a_function = 42; // 443 HandlerNotCallable
// index.missing → 437 HandlerNotFound "'module' object has no attribute 'missing'"
// nothere.main_handler → 443 ModuleNotFound "global name 'nothere' is not defined"
// syntax.main_handler, missing_dep.main_handler, throws_at_load.main_handler → 443 (see those files)
// index..x → 443 MalformedHandler
