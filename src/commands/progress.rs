//! Headless progress: engine events as short lines on stderr (results go to stdout and
//! `--output`). Progress counters redraw one line at most every half second.
use rift::engine::rift::events::Event;
use rift::engine::rift::screen::ESTIMATE_LABEL;
use std::io::Write;
use std::time::Instant;

pub struct Printer {
    last: Instant,
    progress_open: bool,
    /// Progress counters only make sense on a terminal; logs get the other lines.
    tty: bool,
    autoattack: super::aa_progress::AaMeter,
}

impl Printer {
    pub fn new() -> Printer {
        use std::io::IsTerminal;
        Printer {
            last: Instant::now(),
            progress_open: false,
            tty: std::io::stderr().is_terminal(),
            autoattack: Default::default(),
        }
    }

    fn line(&mut self, text: String) {
        if self.progress_open {
            eprintln!();
            self.progress_open = false;
        }
        eprintln!("{text}");
    }

    pub fn show(&mut self, e: &Event) {
        match e {
            Event::Progress { .. } if !self.tty => {}
            Event::Progress { stage, done, total } => {
                if self.last.elapsed().as_secs_f64() > 0.5 || done == total {
                    eprint!("\r  {stage}: {done}/{total}");
                    let _ = std::io::stderr().flush();
                    self.progress_open = done != total;
                    if done == total {
                        eprintln!();
                    }
                    self.last = Instant::now();
                }
            }
            Event::StageStarted { stage, detail, .. } => self.line(format!("== {stage}: {detail}")),
            Event::Baseline { clean_acc, robust_acc, n } => {
                self.line(format!("  baseline: clean {clean_acc:.2}%  robust {robust_acc:.2}%  (n = {n})"))
            }
            Event::AdvSetBaseline { clean_acc, robust_acc, n } => self.line(format!(
                "  samples of the adversarial set: clean {clean_acc:.2}%  robust {robust_acc:.2}%  (n = {n})"
            )),
            Event::AdvSetReady { n, loss, acc } => {
                self.line(format!("  adversarial set: {n} samples, loss {loss:.4}, accuracy {acc:.2}%"))
            }
            Event::ModuleEpoch { .. } | Event::FinetuneIter { .. } => {}
            Event::ModuleScored { score } => self.line(format!(
                "  {:<28} MRC {:>9.4}  robust-acc drop {:>6.2}{}",
                score.name,
                score.mrc,
                score.robust_acc_drop,
                score
                    .estimate
                    .map_or(String::new(), |e| format!("  (estimate was {e:.4})"))
            )),
            Event::ModuleEstimated { module, estimate, estimate_step, .. } => self.line(format!(
                "  {module:<28} estimate {estimate:>9.4}{}",
                estimate_step.map_or(String::new(), |s| format!("  one-step {s:>9.4}"))
            )),
            Event::ScreenFinished { method, modules, seconds } => self.line(format!(
                "  screened {modules} modules ({method}, {ESTIMATE_LABEL}) in {seconds:.2} s"
            )),
            Event::FinetuneEpoch { log } => self.line(format!(
                "  epoch {:>2}  lr {:.5}  loss {:.4}  train {:.2}%{}{}",
                log.epoch,
                log.lr,
                log.train_loss,
                log.train_acc,
                log.val_acc.map_or(String::new(), |v| format!("  val {v:.2}%")),
                log.test_acc.map_or(String::new(), |v| format!("  test {v:.2}%"))
            )),
            Event::SweepPoint { point } => self.line(format!(
                "  α {:.4}  clean {:.2}%  robust {:.2}%",
                point.alpha, point.clean_acc, point.robust_acc
            )),
            Event::Corruption { result } => self.line(format!("  {:<20} {:.2}%", result.name, result.acc)),
            Event::TrainEpoch { epoch, lr, loss, train_acc, test_clean_acc, test_robust_acc } => self.line(format!(
                "  epoch {epoch:>3}  lr {lr:.4}  loss {loss:.4}  train {train_acc:.2}%  test clean {test_clean_acc:.2}%  robust {test_robust_acc:.2}%"
            )),
            Event::Warning { message } => self.line(format!("  warning: {message}")),
            Event::StageFinished { stage, seconds } => self.line(format!("  {stage} done in {seconds:.1} s")),
            Event::Failed { message } => self.line(format!("  failed: {message}")),
            Event::AutoAttack { update } => {
                if self.progress_open {
                    eprintln!();
                    self.progress_open = false;
                }
                self.autoattack.show(update, self.tty)
            }
            Event::FinalEval { summary: f } => self.line(format!(
                "  AutoAttack ({}, n = {}): AT robust {:.2}%  α = {} robust {:.2}%  chosen − AT {:+.2} points, 95 % CI [{:+.2}, {:+.2}]",
                f.attacks, f.n, f.at_robust, f.alpha, f.chosen_robust, f.difference, f.ci95[0], f.ci95[1]
            )),
            // The log's header is for followers, not people.
            Event::LogFormat { .. } => {}
        }
    }
}
