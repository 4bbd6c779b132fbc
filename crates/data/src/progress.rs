//! The one progress bar of memdiff: every command that shows progress (training, sampling, the
//! checkpoint audit, the sweep, the linear model's Monte Carlo) draws it with [`bar`].
//!
//! The bar goes to stderr and indicatif draws nothing when stderr is not a terminal (pipes,
//! files, tests), so stdout and logs stay clean. `-q` and `RUST_LOG` filter log lines only; a
//! caller that must not show a bar passes [`ProgressBar::hidden`] instead.

pub use indicatif::ProgressBar;
use indicatif::ProgressStyle;

/// The bar's template for `len` steps counted in `unit` ("steps", "simulations", ...): elapsed
/// time, the bar, `pos/len unit`, the current message, the remaining time.
pub fn template(unit: &str) -> String {
    format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}  ETA {{eta}}")
}

/// A progress bar of `len` steps counted in `unit` on stderr (`len` may be 0 and set later with
/// [`ProgressBar::set_length`]).
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&template(unit))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb
}

/// [`bar`] when `show`, else a hidden bar that counts without drawing.
pub fn bar_if(show: bool, len: u64, unit: &str) -> ProgressBar {
    if show {
        bar(len, unit)
    } else {
        ProgressBar::hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_the_unit_and_parses() {
        assert_eq!(
            template("steps"),
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}  ETA {eta}"
        );
        assert!(ProgressStyle::with_template(&template("network evals")).is_ok());
        let pb = bar(7, "units");
        assert_eq!(pb.length(), Some(7));
        pb.inc(3);
        assert_eq!(pb.position(), 3);
        assert!(bar_if(false, 7, "units").is_hidden());
    }
}
