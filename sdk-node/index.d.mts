// Types of scf-sdk (ES module entry): the same as the CommonJS entry.
import * as sdk from './index.js';

export * from './index.js';
export default sdk;
