//! Representations; all calculators implement one trait.
