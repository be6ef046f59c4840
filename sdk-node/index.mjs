// ES module entry of scf-sdk: the same objects as the CommonJS entry (index.js).
import sdk from './index.js';

export const { invoke, invokeRaw, InvokeError, apiGatewayResponse, defaultContext, ErrorKinds } = sdk;
export default sdk;
