// i-PI's unit constants, in a module of their own: the public types
// (dist/index.d.ts) reach this file but not the protocol codec, whose
// signatures use Node's Buffer (the published types must not need @types/node).

/**
 * i-PI's own conversion factors (from `ipi/utils/units.py` of i-PI 3.3.1,
 * `UnitMap`): atomic units per unit. They are rounded (1 Å = 1.8897261 Bohr,
 * not CODATA's 1.8897261246), and the driver uses them, not CODATA's, so that
 * what i-PI writes in Å / eV is exactly what the model computed.
 */
export const IPI_UNITS = Object.freeze({
  /** Bohr per Å (`UnitMap["length"]["angstrom"]`). */
  bohrPerAngstrom: 1.8897261,
  /** Hartree per eV (`UnitMap["energy"]["electronvolt"]`). */
  hartreePerEv: 0.036749326,
  /** Hartree/Bohr per eV/Å (`UnitMap["force"]["ev/ang"]`). */
  forcePerEvPerAngstrom: 0.019446904,
});
