//! memdiff-model
