//! The progress bar on a terminal: how far through the run, events acknowledged, rate.

use std::rc::Rc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::clock::instant_now;
use crate::load::Stats;
use crate::plan::Plan;

/// Steps of the bar (per mille of the run).
const STEPS: u64 = 1000;

/// Redraws the bar every 200 ms until the plan is over; draws nothing when `enabled`
/// is false (stdout is not a terminal).
pub async fn show(enabled: bool, plan: Rc<Plan>, stats: Rc<Stats>) {
    if !enabled {
        return;
    }
    let bar = ProgressBar::with_draw_target(Some(STEPS), ProgressDrawTarget::stdout());
    let style = ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {percent:>3}% {msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    loop {
        let now = instant_now();
        let elapsed = now.duration_since(plan.start()).as_secs_f64().max(1e-3);
        let acked = stats.events_acked.get();
        bar.set_position((plan.fraction_done(now) * STEPS as f64) as u64);
        bar.set_message(format!(
            "{acked} events acked, {:.0}/s, {} failed requests",
            acked as f64 / elapsed,
            stats.requests_failed.get()
        ));
        if plan.is_over(now) {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish_and_clear();
}
