// An ES module handler (esm.esm_module): loaded with import(), top-level await included.
const ready = await Promise.resolve('esm');

export const esm_module = async () => ({ module: ready });
