//! Toy 2D datasets and CSV loading.
