//! The element table: symbols by atomic number, as ASE spells them.

/// Element symbols indexed by atomic number; index 0 is `X`, ASE's dummy atom.
pub const ELEMENT_SYMBOLS: [&str; 119] = [
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc",
    "Lv", "Ts", "Og",
];

/// Atomic number of an element symbol, read as ASE reads the `species`
/// column: the first letter is upper-cased and the rest lower-cased, so `si`,
/// `SI` and `Si` are all silicon. `X` is 0.
pub fn atomic_number(symbol: &str) -> Option<i32> {
    let mut chars = symbol.chars();
    let first = chars.next()?;
    let canonical: String = first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect();
    ELEMENT_SYMBOLS.iter().position(|&s| s == canonical).map(|z| z as i32)
}

/// Element symbol of an atomic number in 0..=118 (0 is `X`).
pub fn element_symbol(number: i32) -> Option<&'static str> {
    usize::try_from(number).ok().and_then(|z| ELEMENT_SYMBOLS.get(z).copied())
}
