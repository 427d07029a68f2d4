//! The single integration-test binary: one module per topic, each composing several crates.

mod datasets_embedded;
mod determinism;
mod zoo_geometry;
