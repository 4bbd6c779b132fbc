//! memdiff-plot
