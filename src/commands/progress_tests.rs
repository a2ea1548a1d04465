//! The headless printer: plain lines per stage and per progress step in logs; bars with
//! position and length on a terminal (drawn on a hidden target here).
use super::*;
use rift::engine::autoattack::ensemble::AaUpdate;
use std::sync::{Arc, Mutex};

/// A log the test can read back.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log lock").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn progress(stage: Stage, done: usize, total: usize) -> Event {
    Event::Progress { stage, done, total }
}

fn logging(every: Duration) -> (Printer, Log) {
    let log = Log::default();
    let out = Output::Log {
        out: Box::new(log.clone()),
        every,
    };
    (Printer::with_output(out), log)
}

#[test]
fn logs_get_a_line_per_stage_and_per_progress_step() {
    let (mut p, log) = logging(Duration::ZERO);
    p.show(&Event::started_text(Stage::Mrc, "exact MRC of 2 modules"));
    p.show(&progress(Stage::Mrc, 1, 2));
    p.show(&progress(Stage::Mrc, 2, 2));
    p.show(&Event::StageFinished {
        stage: Stage::Mrc,
        seconds: 1.25,
    });
    let lines = log.lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "== mrc: exact MRC of 2 modules");
    assert!(
        lines[1].starts_with("  mrc: 1/2  ") && lines[1].ends_with(" left"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("/s"), "the rate: {}", lines[1]);
    assert!(
        lines[2].starts_with("  mrc: 2/2  ") && !lines[2].contains("left"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "  mrc done in 1.2 s");
}

/// A short run in a log: progress lines only every 30 s, so none; the other lines as ever.
#[test]
fn logs_of_short_stages_hold_no_progress_lines() {
    let (mut p, log) = logging(LOG_EVERY);
    p.show(&Event::started_text(Stage::Interpolate, "3 α"));
    for done in 1..=3 {
        p.show(&progress(Stage::Interpolate, done, 3));
    }
    p.show(&Event::Warning {
        message: "w".into(),
    });
    assert_eq!(log.lines(), ["== interpolate: 3 α", "  warning: w"]);
}

#[test]
fn rates_keep_the_digits_that_matter() {
    assert_eq!(rate(13055.35), "13055/s");
    assert_eq!(rate(14.64), "14.6/s");
    assert_eq!(rate(0.0417), "0.042/s");
}

#[test]
fn a_terminal_gets_one_bar_per_stage() {
    let mut p = Printer::with_output(Output::Terminal(ProgressDrawTarget::hidden));
    p.show(&Event::started_text(Stage::Interpolate, "5 α"));
    assert!(p.bar().is_none(), "no bar before the first progress");
    p.show(&progress(Stage::Interpolate, 1, 5));
    let first = p.bar().expect("a bar for the sweep").clone();
    assert_eq!((first.position(), first.length()), (1, Some(5)));
    p.show(&progress(Stage::Interpolate, 3, 6));
    assert_eq!((first.position(), first.length()), (3, Some(6)));
    assert!(!first.is_finished());
    // A new stage: the old bar stays as drawn, a new one counts the new stage.
    p.show(&progress(Stage::Ood, 1, 4));
    let second = p.bar().expect("a bar for OOD").clone();
    assert!(first.is_finished(), "the sweep's bar is closed");
    assert_eq!((second.position(), second.length()), (1, Some(4)));
    p.show(&progress(Stage::Ood, 4, 4));
    assert!(second.is_finished());
    p.show(&Event::StageFinished {
        stage: Stage::Ood,
        seconds: 2.0,
    });
    assert!(p.bar().is_none());
}

#[test]
fn autoattack_progress_is_a_bar_on_a_terminal_and_lines_in_logs() {
    let started = AaUpdate::Started {
        attack: "apgd-ce".into(),
        points: 40,
        done: 10,
    };
    let step = |done| AaUpdate::Progress {
        attack: "apgd-ce".into(),
        done,
        total: 40,
    };
    let mut meter = super::super::aa_progress::AaMeter::default();
    let hidden: Option<fn() -> ProgressDrawTarget> = Some(ProgressDrawTarget::hidden);
    assert_eq!(
        meter.show(&started, hidden),
        ["== apgd-ce: 40 points still robust (resuming after 10)"]
    );
    assert!(meter.show(&step(20), hidden).is_empty(), "a bar, not lines");
    let bar = meter.bar().expect("the attack's bar");
    assert_eq!((bar.position(), bar.length()), (20, Some(40)));
    // In a log: no line until 30 s have passed, and one when the attack is done.
    let mut meter = super::super::aa_progress::AaMeter::default();
    meter.show(&started, None);
    assert!(meter.show(&step(20), None).is_empty());
    let done = meter.show(&step(40), None);
    assert_eq!(done.len(), 1);
    assert!(
        done[0].starts_with("  apgd-ce: 40/40 points"),
        "{}",
        done[0]
    );
}
