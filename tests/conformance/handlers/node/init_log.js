'use strict';
// Output printed while the file loads belongs to the first invocation's log.
process.stdout.write('printed while loading\n');

exports.logs_at_init = async () => {
  process.stdout.write('printed by the handler\n');
  return 'done';
};
