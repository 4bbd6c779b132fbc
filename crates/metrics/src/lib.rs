//! memdiff-metrics
