// An ES module ("type": "module" in package.json) with top-level await: the await runs while the
// instance initialises (InitFunction in the Init Report), not on every invocation.
//   scf-local invoke examples/node-esm --handler index.main_handler --runtime nodejs --event '{"name":"SCF"}'
import { setTimeout as sleep } from 'node:timers/promises';
import { greeting } from './lib/greeting.mjs';

const startedAt = new Date().toISOString();
const config = await sleep(20, { prefix: 'Hello' }); // e.g. fetching configuration once

export const main_handler = async (event, context) => {
  console.info('ESM handler, request %s', context.request_id);
  return { message: greeting(config.prefix, event.name ?? 'world'), startedAt };
};

export default {
  // reachable as index.default_handler through the module's default export
  default_handler: async () => 'from the default export',
};
