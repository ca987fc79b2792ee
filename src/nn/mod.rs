//! The score network: MLP, CPU reference backend, DSM training, weights.
