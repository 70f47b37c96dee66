//! N-API bindings.
