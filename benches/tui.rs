//! `cargo bench --bench tui`: the explorer's speed targets (issue 4).
//!
//! 1. Render: a full 200×60 frame of a finished WideResNet-sized session (33 modules,
//!    1000 loss points, 21 α points), drawn through the real crossterm backend into memory
//!    (diffing and escape codes included, the terminal's own I/O excluded); the cursor
//!    moves every frame so each draw has changes. Target: p99 < 5 ms.
//! 2. Key-to-redraw latency while MRC keeps both cores busy: the real binary (`rift demo`)
//!    in tmux with `RIFT_TUI_TRACE`, keys sent 150 ms apart; latency = key read → the
//!    redraw that follows, from the app's own trace (keys that change nothing are left out). Target: p99 < 50 ms.
//! 3. Idle CPU: `rift tui --resume` of a copy of `sessions/example-demo` (no job runs), CPU
//!    time of the whole process over 10 s from /proc. Target: < 2 %.
mod common;

use common::Scorecard;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use rift::engine::rift::events::{Event, Stage, StageAbout};
use rift::engine::rift::mrc::results::{FinetuneEpoch, ModuleScore, SweepPoint};
use rift::jobs::JobEvent;
use rift::tui::theme::Theme;
use rift::tui::{update, view, Msg, State};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn big_state() -> State {
    let mut s = State::new(0.01, 0.1, 10, vec!["default".into()]);
    let ev = |s: &mut State, e: Event| {
        update(s, Msg::Job(JobEvent::Engine(e)));
    };
    update(&mut s, Msg::Start);
    for d in 0..33 {
        let mrc = 0.05 + ((d * 37) % 11) as f64 * 0.7;
        let score = ModuleScore {
            name: format!("block{}.layer.{}.conv{}", d / 10 + 1, d % 10 / 2, d % 2 + 1),
            depth: d,
            kind: "Conv2d 3x3 stride 1".into(),
            shape: vec![640, 640, 3, 3],
            params: 3_686_400,
            mrc,
            robust_acc_drop: mrc * 3.0,
            epoch_losses: (0..10).map(|e| 1.0 + e as f64 * 0.1).collect(),
            epoch_accs: (0..10).map(|e| 50.0 - e as f64).collect(),
            recommended: false,
            estimate: None,
            estimate_step: None,
        };
        ev(&mut s, Event::ModuleScored { score });
    }
    update(&mut s, Msg::Job(JobEvent::Finished { stage: Stage::Mrc }));
    update(&mut s, Msg::FineTune);
    ev(
        &mut s,
        Event::started(
            Stage::Finetune,
            StageAbout::Finetune {
                layers: vec!["block2.layer.2.conv1".into()],
                lr: 0.01,
                epochs: 10,
                from_epoch: 0,
            },
        ),
    );
    for i in 0..3910 {
        let loss = 1.0 / (1.0 + i as f64 / 300.0) + 0.05 * ((i * 7 % 5) as f64);
        ev(
            &mut s,
            Event::FinetuneIter {
                epoch: i / 391,
                iter: i % 391,
                loss,
                lr: 0.01,
            },
        );
    }
    for e in 0..10 {
        let log = FinetuneEpoch {
            epoch: e,
            lr: 0.01,
            train_loss: 0.5,
            train_acc: 80.0 + e as f64,
            val_acc: Some(81.0 + e as f64),
            test_acc: Some(80.5 + e as f64),
        };
        ev(&mut s, Event::FinetuneEpoch { log });
    }
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: Stage::Finetune,
        }),
    );
    for i in 0..=20 {
        let a = i as f64 / 20.0;
        let point = SweepPoint {
            alpha: a,
            clean_acc: 84.0 + 4.0 * a,
            robust_acc: 56.0 - 6.0 * a * a,
            n: 10_000,
        };
        ev(&mut s, Event::SweepPoint { point });
    }
    update(
        &mut s,
        Msg::Job(JobEvent::Finished {
            stage: Stage::Interpolate,
        }),
    );
    s
}

fn render_bench(card: &mut Scorecard) {
    let theme = Theme::load("default").expect("default theme");
    let mut s = big_state();
    let area = Rect::new(0, 0, 200, 60);
    let backend = CrosstermBackend::new(std::io::sink());
    let mut term = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(area),
        },
    )
    .expect("terminal");
    let mut times = Vec::new();
    for i in 0..2000 {
        update(&mut s, if i % 40 < 20 { Msg::Down } else { Msg::Up });
        update(
            &mut s,
            if i % 10 < 5 {
                Msg::AlphaRight
            } else {
                Msg::AlphaLeft
            },
        );
        let t = Instant::now();
        term.draw(|f| view::draw(f, &s, &theme)).expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let p50 = quantile(&mut times, 0.5);
    let p99 = quantile(&mut times, 0.99);
    println!(
        "render 200x60 (2000 frames): p50 {p50:.3} ms  p99 {p99:.3} ms  (target p99 < 5 ms: {})",
        card.target("render p99 < 5 ms", p99 < 5.0)
    );
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket, "-f", "/dev/null"])
        .args(args)
        .env_remove("TMUX")
        .output()
        .expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(socket: &str, text: &str, secs: u64) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if tmux(socket, &["capture-pane", "-p"]).contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn latency_bench(bin: &Path, dir: &Path, card: &mut Scorecard) {
    let socket = format!("rift-bench-{}", std::process::id());
    let trace = dir.join("trace.txt");
    let cmd = format!(
        "RIFT_TUI_TRACE={} {} demo --device cpu --session {}; sleep 30",
        trace.display(),
        bin.display(),
        dir.join("s").display()
    );
    tmux(
        &socket,
        &["new-session", "-d", "-x", "200", "-y", "60", &cmd],
    );
    // A few bars first, so that j/k move the cursor.
    if !wait_for(&socket, "MRC 3/21", 300) {
        card.unmeasured("key-to-redraw p99 < 50 ms", "MRC did not start in the demo");
        tmux(&socket, &["kill-server"]);
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut sent = Vec::new();
    for i in 0..60 {
        sent.push(unix_ms());
        tmux(&socket, &["send-keys", if i % 2 == 0 { "j" } else { "k" }]);
        std::thread::sleep(Duration::from_millis(150));
    }
    let busy = tmux(&socket, &["capture-pane", "-p"]).contains("epoch");
    tmux(&socket, &["kill-server"]);
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    // In the app: key read → redraw done. From outside: `send-keys` → redraw done.
    let mut pending: Option<(f64, f64)> = None;
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        match f.first() {
            // Keys that change nothing (k on the first bar) need no redraw.
            Some(&"key") if f.get(2) == Some(&"1") => {
                pending = pending.or(Some((num(1) / 1e3, num(3) / 1e3)))
            }
            Some(&"draw") => {
                if let Some((k, k_unix)) = pending.take() {
                    inside.push(num(1) / 1e3 - k);
                    let draw_unix = num(3) / 1e3;
                    if let Some(s) = sent.iter().rev().find(|&&s| s <= k_unix) {
                        outside.push(draw_unix - s);
                    }
                }
            }
            _ => {}
        }
    }
    if inside.is_empty() || outside.is_empty() {
        card.unmeasured(
            "key-to-redraw p99 < 50 ms",
            "no key reached the app (no RIFT_TUI_TRACE lines)",
        );
        return;
    }
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    for (what, lat) in [
        ("in the app", &mut inside),
        ("from send-keys", &mut outside),
    ] {
        let n = lat.len();
        let p50 = quantile(lat, 0.5);
        let p99 = quantile(lat, 0.99);
        let max = lat[n - 1];
        println!(
            "key-to-redraw {what} during MRC ({n} keys, MRC running to the end: {busy}, load {load}): p50 {p50:.1} ms  p99 {p99:.1} ms  max {max:.1} ms  (target p99 < 50 ms: {})",
            card.target(&format!("key-to-redraw {what} p99 < 50 ms"), p99 < 50.0)
        );
    }
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// A copy of the bundled example session: the explorer takes its lock and the bench kills
/// it from tmux, which must not leave a stale lock (or anything else) in the checkout.
fn example_session_copy() -> std::io::Result<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = tempfile::tempdir()?;
    let session = dir.path().join("example-demo");
    std::fs::create_dir(&session)?;
    for entry in std::fs::read_dir("sessions/example-demo")? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), session.join(entry.file_name()))?;
        }
    }
    Ok((dir, session))
}

fn idle_bench(bin: &Path, card: &mut Scorecard) {
    let name = "idle CPU < 2 %";
    let socket = format!("rift-idle-{}", std::process::id());
    let (_keep, session) = match example_session_copy() {
        Ok(copy) => copy,
        Err(e) => {
            card.unmeasured(name, &format!("cannot copy sessions/example-demo: {e}"));
            return;
        }
    };
    let resume = format!("tui --resume {}", session.display());
    let cmd = format!("{} {resume}; sleep 30", bin.display());
    tmux(
        &socket,
        &["new-session", "-d", "-x", "200", "-y", "60", &cmd],
    );
    if !wait_for(&socket, "resumed session", 60) {
        card.unmeasured(name, "the explorer did not open");
        tmux(&socket, &["kill-server"]);
        return;
    }
    std::thread::sleep(Duration::from_secs(3));
    let out = Command::new("pgrep")
        .args(["-f", &resume])
        .output()
        .expect("pgrep");
    let pids = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(pid) = pids.split_whitespace().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "rift")
    }) else {
        card.unmeasured(name, "no rift process found");
        tmux(&socket, &["kill-server"]);
        return;
    };
    let hz = 100.0; // USER_HZ on Linux
    let t0 = cpu_ticks(pid);
    let secs = 10.0;
    std::thread::sleep(Duration::from_secs_f64(secs));
    let t1 = cpu_ticks(pid);
    tmux(&socket, &["kill-server"]);
    // Unreadable /proc is no measurement (it used to read as 0 %, "met").
    let (Some(t0), Some(t1)) = (t0, t1) else {
        card.unmeasured(name, &format!("/proc/{pid}/stat is unreadable"));
        return;
    };
    let pct = (t1 - t0) as f64 / hz / secs * 100.0;
    println!(
        "idle CPU of the explorer (no job, {secs} s): {pct:.2} %  (target < 2 %: {})",
        card.target(name, pct < 2.0)
    );
}

fn main() -> std::process::ExitCode {
    let mut card = Scorecard::new("tui");
    render_bench(&mut card);
    let live = ["idle CPU < 2 %", "key-to-redraw p99 < 50 ms"];
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/rift");
    if !bin.exists() {
        for name in live {
            card.unmeasured(
                name,
                "target/release/rift is missing (run `cargo build --release`)",
            );
        }
        return card.finish();
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        for name in live {
            card.unmeasured(
                name,
                "tmux is missing (the live benchmarks drive the explorer in it)",
            );
        }
        return card.finish();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    idle_bench(&bin, &mut card);
    latency_bench(&bin, dir.path(), &mut card);
    card.finish()
}
