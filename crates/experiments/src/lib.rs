//! memdiff-experiments
