//! Hardware energy models behind tensor-core's `EnergyModel` trait: the ICLR'19 systolic-array
//! model (Yang, Zhu, Liu, ICLR 2019), the Eyeriss row-stationary model (Chen, Emer, Sze, ISCA 2016;
//! Yang, Chen, Sze, CVPR 2017) and the pricing of training-work ledgers (Wang et al., NeurIPS 2019).
//!
//! Scope and formulas: `shared/spec/energy-models.md`. The models are not implemented yet; the
//! crate exists so that the workspace layout and its dependency rule (tensor-core only) hold.
