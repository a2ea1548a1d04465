//! The explorer driven as a user drives it: the real binary in a tmux pseudo-terminal,
//! keys sent with `send-keys`, the screen read with `capture-pane`. After each run the
//! same terminal is checked: raw mode off (`stty` shows icanon and echo), the alternate
//! screen left, mouse reporting off.
mod common;

use common::{path_str, rift_bin, rift_ok};
use rift::report::session::Session;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One tmux server of its own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    /// Runs `cmd` in a 120×40 pane; afterwards the pane's shell writes the exit status and
    /// `stty -a` of the same terminal into `dir`, then waits to be read.
    fn start(name: &str, dir: &Path, cmd: &str) -> Tmux {
        let t = Tmux {
            socket: format!("rift-e2e-{name}-{}", std::process::id()),
            dir: dir.to_path_buf(),
        };
        let script = format!(
            "cd {root} && {cmd}; echo $? > {d}/exit; stty -a > {d}/stty; sleep 120",
            root = env!("CARGO_MANIFEST_DIR"),
            d = path_str(dir),
        );
        let out = t.tmux(&["new-session", "-d", "-x", "120", "-y", "40", &script]);
        assert!(
            out.status.success(),
            "tmux is needed for this test (apt install tmux): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", k]);
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn format(&self, f: &str) -> String {
        let out = self.tmux(&["display-message", "-p", f]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until the screen shows `text`; panics with the screen after `secs`.
    fn wait_for(&self, text: &str, secs: u64) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "`{text}` did not appear within {secs} s; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits for the explorer to end; returns its exit status.
    fn wait_exit(&self, secs: u64) -> i32 {
        let path = self.dir.join("exit");
        let t = Instant::now();
        while !path.exists() || std::fs::read_to_string(&path).unwrap().trim().is_empty() {
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "the explorer did not exit; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(300)); // stty's file
        std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The terminal is as the shell left it: cooked mode, main screen, no mouse reports.
    fn assert_restored(&self) {
        let stty = std::fs::read_to_string(self.dir.join("stty")).unwrap();
        let flags: Vec<&str> = stty.split_whitespace().collect();
        for f in ["icanon", "echo", "isig"] {
            assert!(
                flags.contains(&f),
                "`{f}` is off after the explorer: {stty}"
            );
        }
        assert_eq!(
            self.format("#{alternate_on}"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(
            self.format("#{mouse_any_flag}"),
            "0",
            "mouse reporting left on"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The α the cursor shows (`α 0.750 clean …`).
fn cursor_alpha(screen: &str) -> f64 {
    let at = screen
        .find("α 0.")
        .or_else(|| screen.find("α 1."))
        .expect("α line");
    screen[at + "α ".len()..at + "α ".len() + 5]
        .parse()
        .unwrap()
}

#[test]
fn the_demo_from_mrc_to_a_saved_session() {
    let tmp = tempfile::tempdir().unwrap();
    let session = tmp.path().join("demo");
    let cmd = format!(
        "{} demo --device cpu --session {}",
        path_str(&rift_bin()),
        path_str(&session)
    );
    let t = Tmux::start("demo", tmp.path(), &cmd);
    // MRC bars fill in; the cursor lands on the recommendation.
    let s = t.wait_for("MRC done", 600);
    assert!(s.contains("MRC 21/21"), "{s}");
    assert!(s.contains("lowest MRC: recommended (Enter)"), "{s}");
    t.keys(&["Enter"]);
    // Fine-tuning, then the α sweep by itself.
    let s = t.wait_for("move the α cursor", 600);
    assert!(s.contains("rule α"), "{s}");
    let rule = cursor_alpha(&s);
    t.keys(&["Left"]);
    let moved = cursor_alpha(&t.screen());
    assert!(moved < rule, "← moves the α cursor: {rule} → {moved}");
    t.keys(&["a"]);
    t.wait_for("accepted: wrote", 60);
    t.keys(&["s"]);
    t.wait_for("session saved", 60);
    // A second candidate: the next module by MRC (sorted, the cursor stays on the
    // recommendation; one down), fine-tuned and swept; its rule α accepted and saved.
    t.keys(&["o", "Down", "Enter"]);
    let s = t.wait_for("move the α cursor", 600);
    let second_rule = cursor_alpha(&s);
    t.keys(&["a"]);
    t.wait_for("accepted: wrote", 60);
    t.keys(&["s"]);
    t.wait_for("session saved", 60);
    // The compare view lists both, each with its own accepted α.
    t.keys(&["m"]);
    let s = t.wait_for("2 candidates", 30);
    assert!(s.matches('★').count() >= 2, "{s}");
    t.keys(&["m", "q"]);
    assert_eq!(t.wait_exit(30), 0);
    t.assert_restored();

    let saved = Session::load(&session).unwrap();
    let first = saved.finetune.as_ref().unwrap().layers.clone();
    let second: Vec<_> = std::fs::read_dir(session.join("candidates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(second.len(), 1, "{second:?}");
    let other = Session::load(&second[0]).unwrap();
    let other_layers = other.finetune.as_ref().unwrap().layers.clone();
    assert_ne!(other_layers, first);
    assert_eq!(other.chosen.as_ref().unwrap().alpha, second_rule);
    assert!(second[0].join("chosen.pth").is_file());
    assert!(second[0].join("finetuned.safetensors").is_file());
    let mrc = saved.mrc.as_ref().expect("MRC saved");
    assert_eq!(mrc.modules.len(), 21);
    assert_eq!(
        saved.finetune.as_ref().unwrap().layers,
        vec![mrc.recommended.clone()]
    );
    assert_eq!(saved.chosen.as_ref().unwrap().alpha, moved);
    for f in [
        "session.yaml",
        "report.md",
        "chosen.pth",
        "chosen.safetensors",
        "finetuned.safetensors",
        "mrc.png",
        "mrc.svg",
        "alpha.png",
        "alpha.svg",
    ] {
        assert!(session.join(f).exists(), "{f} missing");
    }

    // The saved session reopens without computing anything.
    let tmp2 = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} tui --resume {}",
        path_str(&rift_bin()),
        path_str(&session)
    );
    let t = Tmux::start("resume", tmp2.path(), &cmd);
    let s = t.wait_for("resumed session", 30);
    assert!(s.contains("MRC 21/21"), "{s}");
    assert!(s.contains(&format!("accepted α {moved:.3}")), "{s}");
    t.keys(&["m"]);
    let s = t.wait_for("2 candidates", 30);
    assert!(s.contains(&other_layers[0]), "{s}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(30), 0);
    t.assert_restored();
}

#[test]
fn following_a_headless_run_and_a_signal_from_outside() {
    let tmp = tempfile::tempdir().unwrap();
    // The follower starts before the run has created its directory: it waits, saying so.
    let session = tmp.path().join("run");
    let cmd = format!(
        "{} tui --follow {}",
        path_str(&rift_bin()),
        path_str(&session)
    );
    let t = Tmux::start("follow", tmp.path(), &cmd);
    t.wait_for("waiting for", 30);
    t.wait_for("read-only", 30);
    rift_ok(&[
        "run",
        "--checkpoint",
        common::DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
        "--eps",
        "0.2",
        "--step",
        "0.05",
        "--limit",
        "200",
        "--adv-limit",
        "100",
        "--mrc-epochs",
        "2",
        "--fast",
        "--lr",
        "0.01",
        "--epochs",
        "1",
        "--alphas",
        "0,0.5,1",
        "--device",
        "cpu",
        "--session",
        path_str(&session),
    ]);
    // Everything the run did reaches the follower's panels.
    t.wait_for("MRC 21/21", 30);
    let s = t.wait_for("rule α", 30);
    assert!(s.contains("read-only"), "{s}");
    // Interrupted from outside (not a key): it still restores the terminal.
    let pid = Command::new("pgrep")
        .args(["-f", &format!("tui --follow {}", path_str(&session))])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&pid.stdout);
    // The pane's shell and tmux carry the same words; the explorer is the `rift` process.
    let pid = pids
        .split_whitespace()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "rift")
        })
        .expect("the follower's pid");
    Command::new("kill").args(["-INT", pid]).status().unwrap();
    assert_eq!(t.wait_exit(30), 0);
    t.assert_restored();
}

/// Without a terminal the explorer says what to use instead; bad sessions name the file.
#[test]
fn without_a_terminal_or_with_bad_sessions_it_says_why() {
    use common::{assert_failed, rift, EXIT_ERROR, EXIT_USAGE};
    assert_failed(&rift(&["demo"]), EXIT_ERROR, &["rift demo --headless"]);
    let out = rift(&[
        "tui",
        "--checkpoint",
        common::DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        "assets/demo",
    ]);
    assert_failed(&out, EXIT_ERROR, &["`rift run`"]);
    assert_failed(&rift(&["tui"]), EXIT_USAGE, &["--checkpoint"]);
    // Checked before the terminal: a session that is not there is named.
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    for flag in ["--resume", "--follow"] {
        let out = rift(&["tui", flag, path_str(&missing)]);
        assert_failed(&out, EXIT_ERROR, &["nope"]);
    }
}

/// The long flags a `--help` lists (each option line's own flag, not its aliases).
fn listed_flags(help: &str) -> std::collections::BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(str::to_string)
        })
        .collect()
}

/// `rift tui` reads the same flag groups as `rift run` (model, reading, data, attack,
/// MRC, fine-tuning, sweep, runtime, OOD, final evaluation), so it lists every run flag
/// but the α search's and `--output`, plus its own `--resume`, `--follow` and `--theme`.
#[test]
fn the_explorer_takes_the_run_flags() {
    let run = listed_flags(&rift_ok(&["run", "--help"]));
    let tui = listed_flags(&rift_ok(&["tui", "--help"]));
    for f in [
        "--checkpoint",
        "--arch",
        "--width",
        "--activation",
        "--normalize",
    ] {
        assert!(
            tui.contains(f),
            "`rift tui --help` does not list {f}: {tui:?}"
        );
    }
    let run_only = ["--search", "--search-subset", "--search-budget", "--output"];
    let tui_only = ["--resume", "--follow", "--theme"];
    let from_run: Vec<&String> = run
        .iter()
        .filter(|f| !run_only.contains(&f.as_str()))
        .collect();
    let from_tui: Vec<&String> = tui
        .iter()
        .filter(|f| !tui_only.contains(&f.as_str()))
        .collect();
    assert_eq!(from_tui, from_run, "rift tui and rift run list other flags");
    for f in tui_only.iter().chain(&run_only[..3]) {
        assert!(tui.contains(*f) != run.contains(*f), "{f}");
    }
}
