'use strict';
// A CommonJS function in every handler form scf-shim runs. Try it:
//   scf-local invoke examples/node-hello --handler index.main_handler --runtime nodejs --event '{"name":"SCF"}'

let invocations = 0; // module state survives between invocations of a warm instance

/** async/promise handler: the resolved value is the result. */
exports.main_handler = async (event, context) => {
  invocations += 1;
  console.log('Hello from %s (request %s)', context.function_name, context.request_id);
  return {
    message: `Hello, ${event.name ?? 'world'}!`,
    invocations,
    remainingMs: context.getRemainingTimeInMillis() > 0,
  };
};

/** callback handler: answered once the event loop is empty (callbackWaitsForEmptyEventLoop = true). */
exports.callback_handler = (event, context, callback) => {
  setTimeout(() => console.log('a timer that ran before the answer was posted'), 10);
  callback(null, { message: `Hello, ${event.name ?? 'world'}!`, style: 'callback' });
};

/** a nested property path: --handler index.handlers.greet */
exports.handlers = {
  greet: async (event) => `Hi ${event.name ?? 'there'}`,
};

/** a synchronous handler: the return value is the result (undefined → null). */
exports.sync_handler = (event) => ({ length: JSON.stringify(event).length });
