//! Labelled block tensors (metatensor's data model).
