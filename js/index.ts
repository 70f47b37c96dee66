/**
 * acdc — atom-centred density correlations for Node.js.
 * Units: lengths in Å, energies in eV.
 */
export { System, type SystemInit, type InfoValue, type JsonValue, type ArrayValue, type NumberArray } from './system';
export { NeighborList, type Pairs, type NeighborListOptions } from './neighbors';
export { parseXyz, formatXyz, readXyz, readXyzSync, writeXyz, writeXyzSync, iterXyz } from './xyz';
