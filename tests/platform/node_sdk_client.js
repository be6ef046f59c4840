'use strict';
// The official TencentCloud Node.js SDK (tencentcloud-sdk-nodejs-scf) against `scf-local serve`, unchanged
// but for its endpoint: `node node_sdk_client.js HOST:PORT SECRET_ID SECRET_KEY FUNCTION TIMER_FUNCTION`
// prints one JSON object with what ListFunctions, GetFunction, ListTriggers and Invoke answered (or the
// error of each). test_clients.py installs the SDK and runs it.
const tencentcloud = require('tencentcloud-sdk-nodejs-scf');

async function main() {
  const [endpoint, secretId, secretKey, fn, timerFn] = process.argv.slice(2);
  const client = new tencentcloud.scf.v20180416.Client({
    credential: { secretId, secretKey },
    region: 'ap-guangzhou',
    profile: { httpProfile: { endpoint, protocol: 'http://' } },
  });
  const out = {};
  const call = async (name, params) => {
    try {
      out[name] = await client[name](params);
    } catch (e) {
      out[name] = { error: { code: e.code, message: e.message } };
    }
  };
  await call('ListFunctions', { Limit: 10 });
  await call('GetFunction', { FunctionName: fn });
  await call('ListTriggers', { FunctionName: timerFn });
  await call('Invoke', { FunctionName: fn, ClientContext: JSON.stringify({ from: 'node' }), LogType: 'Tail' });
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
