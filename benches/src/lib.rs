//! # benches
//!
//! Backend comparisons of the zoo's models (forward and training step, images/s, beside
//! PyTorch). The benchmark matrix arrives with the benches issue; until then this crate exports
//! nothing.
