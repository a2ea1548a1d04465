//! AutoAttack progress: per attack, points done, throughput and time left (an indicatif
//! bar on a terminal, a plain line every 30 s in logs); one line per finished attack with
//! the cumulative robust accuracy.
use super::progress_style::{duration, stage_bar};
use indicatif::{ProgressBar, ProgressDrawTarget};
use rift::engine::autoattack::ensemble::AaUpdate;
use std::time::Instant;

/// How often a log gets the running attack's progress line.
const LOG_EVERY_SECS: f64 = 30.0;

/// Throughput of the running attack, measured from its first progress in this process.
pub struct AaMeter {
    attack: String,
    since: Instant,
    /// Points done when this process started the attack (a resumed run starts part-way).
    done_at_start: usize,
    last_line: Instant,
    /// The running attack's bar (terminal only; made at its first progress, so that the
    /// attack's heading is printed before it).
    bar: Option<ProgressBar>,
}

impl Default for AaMeter {
    fn default() -> Self {
        AaMeter {
            attack: String::new(),
            since: Instant::now(),
            done_at_start: 0,
            last_line: Instant::now(),
            bar: None,
        }
    }
}

impl AaMeter {
    /// The lines to print for `u`; `terminal` (the bars' target) draws progress as a bar,
    /// without it progress is a line every 30 s.
    pub fn show(
        &mut self,
        u: &AaUpdate,
        terminal: Option<fn() -> ProgressDrawTarget>,
    ) -> Vec<String> {
        match u {
            AaUpdate::Started {
                attack,
                points,
                done,
            } => {
                self.close();
                self.restart(attack, *done);
                let resumed = if *done > 0 {
                    format!(" (resuming after {done})")
                } else {
                    String::new()
                };
                if attack == "clean" {
                    vec![format!("== clean accuracy on {points} points")]
                } else {
                    vec![format!(
                        "== {attack}: {points} points still robust{resumed}"
                    )]
                }
            }
            AaUpdate::Progress {
                attack,
                done,
                total,
            } => {
                if *attack != self.attack {
                    self.close();
                    self.restart(attack, 0);
                }
                match terminal {
                    Some(target) => {
                        let bar = self.bar.get_or_insert_with(|| {
                            stage_bar(target, attack.clone(), *done as u64, *total as u64)
                        });
                        bar.set_length(*total as u64);
                        bar.set_position(*done as u64);
                        Vec::new()
                    }
                    None => self.log_line(attack, *done, *total).into_iter().collect(),
                }
            }
            AaUpdate::Finished { outcome } => {
                self.close();
                vec![format!(
                    "  {:<9} robust {:>6.2}%  ({} of {} points attacked survived, {:.1} s{})",
                    outcome.attack,
                    outcome.robust_acc,
                    outcome.robust,
                    outcome.evaluated,
                    outcome.seconds,
                    if outcome.resumed {
                        ", from the state file"
                    } else {
                        ""
                    }
                )]
            }
        }
    }

    fn restart(&mut self, attack: &str, done: usize) {
        self.attack = attack.to_string();
        self.since = Instant::now();
        self.last_line = Instant::now();
        self.done_at_start = done;
    }

    /// The progress line of a log, when 30 s have passed since the last one.
    fn log_line(&mut self, attack: &str, done: usize, total: usize) -> Option<String> {
        if self.last_line.elapsed().as_secs_f64() < LOG_EVERY_SECS && done < total {
            return None;
        }
        self.last_line = Instant::now();
        let secs = self.since.elapsed().as_secs_f64();
        let fresh = done.saturating_sub(self.done_at_start);
        let rate = if secs > 0.0 { fresh as f64 / secs } else { 0.0 };
        let left = if rate > 0.0 {
            duration((total - done) as f64 / rate)
        } else {
            "?".into()
        };
        Some(format!(
            "  {attack}: {done}/{total} points  {rate:.1} points/s  {left} left"
        ))
    }

    /// The running attack's bar, for tests.
    #[cfg(test)]
    pub fn bar(&self) -> Option<&ProgressBar> {
        self.bar.as_ref()
    }

    /// Leaves the running attack's bar as drawn (the finished line follows below it).
    fn close(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}
