//! Energy-efficient training: stochastic mini-batch dropping, selective layer update and
//! predictive sign gradients (Wang et al., "E2-Train: Training State-of-the-art CNNs with Over 80%
//! Energy Savings", NeurIPS 2019).
//!
//! Scope: `shared/spec/e2-train.md`. Not implemented yet; the crate depends on tensor-core only
//! and records executed work in its `WorkLedger`.
