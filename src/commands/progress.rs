//! Headless progress: engine events as short lines on stderr (results go to stdout and
//! `--output`). On a terminal each stage's progress is an indicatif bar (position/total,
//! rate, time left) with the lines printed above it; in logs (stderr not a terminal) there
//! are no bars, only plain lines: the same event lines, plus a progress line per stage at
//! most every 30 s (long runs on a cluster show they are alive and how fast they go).
use super::progress_style::{duration, rate, stage_bar};
use indicatif::{ProgressBar, ProgressDrawTarget};
use rift::engine::rift::events::{Event, Stage};
use rift::engine::rift::mrc::screen::ESTIMATE_LABEL;
use std::io::Write;
use std::time::{Duration, Instant};

/// How often a log gets a stage's progress line.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Where the lines and the progress go.
pub(super) enum Output {
    /// Bars on a fresh target of this kind each (stderr; hidden in tests), lines above.
    Terminal(fn() -> ProgressDrawTarget),
    /// Plain lines only; a stage's progress at most every `every`.
    Log {
        out: Box<dyn Write + Send>,
        every: Duration,
    },
}

/// The stage whose progress is showing.
struct Current {
    stage: Stage,
    /// Its bar (terminal output only).
    bar: Option<ProgressBar>,
    since: Instant,
    last_line: Instant,
}

pub struct Printer {
    out: Output,
    current: Option<Current>,
    autoattack: super::aa_progress::AaMeter,
}

impl Printer {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Printer {
        use std::io::IsTerminal;
        let out = if std::io::stderr().is_terminal() {
            Output::Terminal(ProgressDrawTarget::stderr)
        } else {
            Output::Log {
                out: Box::new(std::io::stderr()),
                every: LOG_EVERY,
            }
        };
        Printer::with_output(out)
    }

    pub(super) fn with_output(out: Output) -> Printer {
        Printer {
            out,
            current: None,
            autoattack: Default::default(),
        }
    }

    fn line(&mut self, text: &str) {
        match &mut self.out {
            Output::Terminal(_) => match self.current.as_ref().and_then(|c| c.bar.as_ref()) {
                Some(bar) if !bar.is_finished() => bar.println(text),
                _ => eprintln!("{text}"),
            },
            Output::Log { out, .. } => {
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// Leaves the running stage's bar as it is drawn and stops updating it.
    fn close(&mut self) {
        if let Some(bar) = self.current.take().and_then(|c| c.bar) {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }

    fn progress(&mut self, stage: Stage, done: usize, total: usize) {
        let same = self
            .current
            .as_ref()
            .is_some_and(|c| c.stage == stage && !c.bar.as_ref().is_some_and(|b| b.is_finished()));
        if !same {
            self.close();
            let bar = match &self.out {
                Output::Terminal(target) => Some(stage_bar(
                    *target,
                    stage.to_string(),
                    done as u64,
                    total as u64,
                )),
                Output::Log { .. } => None,
            };
            self.current = Some(Current {
                stage,
                bar,
                since: Instant::now(),
                last_line: Instant::now(),
            });
        }
        let Some(c) = &mut self.current else {
            return;
        };
        match (&mut self.out, &c.bar) {
            (Output::Terminal(_), Some(bar)) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                if done >= total {
                    bar.finish();
                }
            }
            (Output::Log { out, every }, _) => {
                if c.last_line.elapsed() < *every {
                    return;
                }
                c.last_line = Instant::now();
                let secs = c.since.elapsed().as_secs_f64();
                let per_sec = if secs > 0.0 { done as f64 / secs } else { 0.0 };
                let left = if per_sec > 0.0 && done < total {
                    format!("  {} left", duration((total - done) as f64 / per_sec))
                } else {
                    String::new()
                };
                let _ = writeln!(out, "  {stage}: {done}/{total}  {}{left}", rate(per_sec));
            }
            (Output::Terminal(_), None) => {}
        }
    }

    pub fn show(&mut self, e: &Event) {
        match e {
            Event::Progress { stage, done, total } => self.progress(*stage, *done, *total),
            Event::StageStarted { stage, detail, .. } => {
                self.close();
                self.line(&format!("== {stage}: {detail}"))
            }
            Event::Baseline { clean_acc, robust_acc, n } => {
                self.line(&format!("  baseline: clean {clean_acc:.2}%  robust {robust_acc:.2}%  (n = {n})"))
            }
            Event::AdvSetBaseline { clean_acc, robust_acc, n } => self.line(&format!(
                "  samples of the adversarial set: clean {clean_acc:.2}%  robust {robust_acc:.2}%  (n = {n})"
            )),
            Event::AdvSetReady { n, loss, acc } => {
                self.line(&format!("  adversarial set: {n} samples, loss {loss:.4}, accuracy {acc:.2}%"))
            }
            Event::ModuleEpoch { .. } | Event::FinetuneIter { .. } => {}
            Event::ModuleScored { score } => self.line(&format!(
                "  {:<28} MRC {:>9.4}  robust-acc drop {:>6.2}{}",
                score.name,
                score.mrc,
                score.robust_acc_drop,
                score
                    .estimate
                    .map_or(String::new(), |e| format!("  (estimate was {e:.4})"))
            )),
            Event::ModuleEstimated { module, estimate, estimate_step, .. } => self.line(&format!(
                "  {module:<28} estimate {estimate:>9.4}{}",
                estimate_step.map_or(String::new(), |s| format!("  one-step {s:>9.4}"))
            )),
            Event::ScreenFinished { method, modules, seconds } => self.line(&format!(
                "  screened {modules} modules ({method}, {ESTIMATE_LABEL}) in {seconds:.2} s"
            )),
            Event::FinetuneEpoch { log } => self.line(&format!(
                "  epoch {:>2}  lr {:.5}  loss {:.4}  train {:.2}%{}{}",
                log.epoch,
                log.lr,
                log.train_loss,
                log.train_acc,
                log.val_acc.map_or(String::new(), |v| format!("  val {v:.2}%")),
                log.test_acc.map_or(String::new(), |v| format!("  test {v:.2}%"))
            )),
            Event::SweepPoint { point } => self.line(&format!(
                "  α {:.4}  clean {:.2}%  robust {:.2}%",
                point.alpha, point.clean_acc, point.robust_acc
            )),
            Event::Corruption { result } => self.line(&format!("  {:<20} {:.2}%", result.name, result.acc)),
            Event::TrainEpoch { epoch, lr, loss, train_acc, test_clean_acc, test_robust_acc } => self.line(&format!(
                "  epoch {epoch:>3}  lr {lr:.4}  loss {loss:.4}  train {train_acc:.2}%  test clean {test_clean_acc:.2}%  robust {test_robust_acc:.2}%"
            )),
            Event::Warning { message } => self.line(&format!("  warning: {message}")),
            Event::StageFinished { stage, seconds } => {
                self.close();
                self.line(&format!("  {stage} done in {seconds:.1} s"))
            }
            Event::Failed { message } => self.line(&format!("  failed: {message}")),
            Event::AutoAttack { update } => {
                self.close();
                let target = match &self.out {
                    Output::Terminal(target) => Some(*target),
                    Output::Log { .. } => None,
                };
                for text in self.autoattack.show(update, target) {
                    self.line(&text);
                }
            }
            Event::FinalEval { summary: f } => self.line(&format!(
                "  AutoAttack ({}, n = {}): AT robust {:.2}%  α = {} robust {:.2}%  chosen − AT {:+.2} points, 95 % CI [{:+.2}, {:+.2}]",
                f.attacks, f.n, f.at_robust, f.alpha, f.chosen_robust, f.difference, f.ci95[0], f.ci95[1]
            )),
            // The log's header is for followers, not people; a batch moves no count.
            Event::LogFormat { .. } | Event::Batch { .. } => {}
        }
    }

    /// The running stage's bar (terminal output), for tests.
    #[cfg(test)]
    fn bar(&self) -> Option<&ProgressBar> {
        self.current.as_ref().and_then(|c| c.bar.as_ref())
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
