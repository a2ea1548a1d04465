//! AutoAttack progress on stderr: per attack, points done, throughput and time left; one
//! line per finished attack with the cumulative robust accuracy.
use rift::engine::autoattack::ensemble::AaUpdate;
use std::io::Write;
use std::time::Instant;

/// Throughput of the running attack, measured from its first progress in this process.
pub struct AaMeter {
    attack: String,
    since: Instant,
    /// Points done when this process started the attack (a resumed run starts part-way).
    done_at_start: usize,
    last_draw: Instant,
    open: bool,
}

impl Default for AaMeter {
    fn default() -> Self {
        AaMeter {
            attack: String::new(),
            since: Instant::now(),
            done_at_start: 0,
            last_draw: Instant::now(),
            open: false,
        }
    }
}

fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl AaMeter {
    /// Lines to print for `u`; `tty` redraws a progress line in place, logs get one every 30 s.
    pub fn show(&mut self, u: &AaUpdate, tty: bool) {
        match u {
            AaUpdate::Started {
                attack,
                points,
                done,
            } => {
                self.close();
                self.attack = attack.clone();
                self.since = Instant::now();
                self.done_at_start = *done;
                let resumed = if *done > 0 {
                    format!(" (resuming after {done})")
                } else {
                    String::new()
                };
                if attack == "clean" {
                    eprintln!("== clean accuracy on {points} points");
                } else {
                    eprintln!("== {attack}: {points} points still robust{resumed}");
                }
            }
            AaUpdate::Progress {
                attack,
                done,
                total,
            } => {
                if *attack != self.attack {
                    self.attack = attack.clone();
                    self.since = Instant::now();
                    self.done_at_start = 0;
                }
                let every = if tty { 0.5 } else { 30.0 };
                if self.last_draw.elapsed().as_secs_f64() < every && done < total {
                    return;
                }
                self.last_draw = Instant::now();
                let secs = self.since.elapsed().as_secs_f64();
                let fresh = done.saturating_sub(self.done_at_start);
                let rate = if secs > 0.0 { fresh as f64 / secs } else { 0.0 };
                let left = if rate > 0.0 {
                    duration((total - done) as f64 / rate)
                } else {
                    "?".into()
                };
                let text =
                    format!("  {attack}: {done}/{total} points  {rate:.1} points/s  {left} left");
                if tty {
                    eprint!("\r{text}   ");
                    let _ = std::io::stderr().flush();
                    self.open = true;
                } else {
                    eprintln!("{text}");
                }
            }
            AaUpdate::Finished { outcome } => {
                self.close();
                eprintln!(
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
                );
            }
        }
    }

    fn close(&mut self) {
        if self.open {
            eprintln!();
            self.open = false;
        }
    }
}
