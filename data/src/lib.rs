//! # data
//!
//! Datasets and the multithreaded augmentation pipeline that feeds training. This crate knows
//! nothing of models. Its readers, transforms and pipeline arrive with the data issue; until
//! then it exports nothing.
