/**
 * acdc — the ES module entry point (`import { SoapPowerSpectrum } from 'acdc-ml'`).
 *
 * It re-exports the CommonJS build (dist/index.js), so `import` and `require`
 * share one copy of every class and of the native binding: a `TensorMap` made
 * through one is `instanceof TensorMap` through the other.
 * Units: lengths in Å, energies in eV.
 */
export * from './index.js';
