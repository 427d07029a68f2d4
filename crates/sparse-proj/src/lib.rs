//! Energy-constrained compression by weighted sparse projection and layer input masking
//! (Yang, Zhu, Liu, "Energy-Constrained Compression for Deep Neural Networks via Weighted Sparse
//! Projection and Layer Input Masking", ICLR 2019).
//!
//! Scope: `shared/spec/sparse-projection.md`. Not implemented yet; the crate depends on
//! tensor-core only and reaches energy models through its `EnergyModel` trait.
