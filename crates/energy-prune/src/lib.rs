//! Energy-aware pruning with least-squares restoration (Yang, Chen, Sze, "Designing
//! Energy-Efficient Convolutional Neural Networks using Energy-Aware Pruning", CVPR 2017).
//!
//! Scope: `shared/spec/energy-aware-pruning.md`. Not implemented yet; the crate depends on
//! tensor-core only and ranks layers through its `EnergyModel` trait.
