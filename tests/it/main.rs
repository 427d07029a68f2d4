//! The single integration-test binary: one module per topic, each composing several crates.

mod datasets_embedded;
mod determinism;
mod e2_train_dataflow;
mod e2_train_network;
mod e2_train_smoke;
mod energy_goldens;
mod faults;
mod imagenet_folder;
mod onnx_import;
mod projection_end_to_end;
mod projection_invariants;
mod prune_restore;
mod prune_to_energy;
mod torch_weights;
mod zoo_geometry;
