//! memdiff-linear
