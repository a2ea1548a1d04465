//! `rift tui --follow`: the events of a headless `rift run`, read from its `events.jsonl`
//! as it grows. A plain thread polls the file (no inotify dependency; 5 polls a second is
//! plenty for a progress display) and turns each complete line into the same `JobEvent`s
//! the explorer's own worker sends, so every panel works unchanged, read-only.
use super::messages::JobEvent;
use crate::engine::rift::events::{Event, EVENTS_FORMAT};
use crate::report::session::EVENTS_FILE;
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const POLL: Duration = Duration::from_millis(200);

/// Starts following `dir/events.jsonl`. Neither the directory nor the file need exist yet:
/// a follower is often started before the run (a cluster job still queued), so it waits
/// for both, saying so, and follows once they appear. The thread ends when the receiver
/// is dropped.
pub fn follow(dir: &Path) -> Result<UnboundedReceiver<JobEvent>> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "cannot follow {}: it is not a directory (expected a session directory that `rift run --session {}` writes)",
            dir.display(),
            dir.display()
        );
    }
    let dir = dir.to_path_buf();
    let (tx, rx) = unbounded_channel();
    std::thread::Builder::new()
        .name("rift-follow".into())
        .spawn(move || tail(&dir, &tx))
        .context("cannot start the thread that follows the events file")?;
    Ok(rx)
}

/// What the follower is waiting for, announced once each.
#[derive(Clone, Copy, PartialEq)]
enum Waiting {
    Nothing,
    Directory,
    EventsFile,
}

fn tail(dir: &Path, tx: &UnboundedSender<JobEvent>) {
    let path = dir.join(EVENTS_FILE);
    let path = path.as_path();
    let mut offset = 0u64;
    let mut pending = String::new();
    let mut announced = Waiting::Nothing;
    while !tx.is_closed() {
        match read_from(path, offset) {
            Ok(chunk) => {
                if announced != Waiting::Nothing {
                    announced = Waiting::Nothing;
                    let message = format!("following {} (read-only)", dir.display());
                    let _ = tx.send(JobEvent::Note(message));
                }
                offset += chunk.len() as u64;
                pending.push_str(&String::from_utf8_lossy(&chunk));
                // Only complete lines: the writer may be half way through one.
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    for e in events_of_line(line.trim()) {
                        if tx.send(e).is_err() {
                            return;
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (now, message) = if dir.is_dir() {
                    let message = format!(
                        "waiting for {} (the run has not written events yet) …",
                        path.display()
                    );
                    (Waiting::EventsFile, message)
                } else {
                    let message = format!(
                        "waiting for {} (the run has not created it yet; q quits) …",
                        dir.display()
                    );
                    (Waiting::Directory, message)
                };
                if announced != now {
                    announced = now;
                    let _ = tx.send(JobEvent::Note(message));
                }
            }
            Err(e) => {
                let _ = tx.send(JobEvent::Failed(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
                return;
            }
        }
        std::thread::sleep(POLL);
    }
}

fn read_from(path: &Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    // A shorter file was replaced (a new run): start again from its beginning.
    let offset = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// The explorer's events for one line of `events.jsonl`: the engine event, and for the end
/// of a stage also the `Finished` the explorer's own worker would send.
pub fn events_of_line(line: &str) -> Vec<JobEvent> {
    if line.is_empty() {
        return Vec::new();
    }
    let Ok(e) = serde_json::from_str::<Event>(line) else {
        let shown: String = line.chars().take(60).collect();
        let message = format!("skipped an events.jsonl line rift does not know: {shown}");
        return vec![JobEvent::Engine(Event::Warning { message })];
    };
    if let Event::LogFormat { version } = e {
        if version > EVENTS_FORMAT {
            return vec![JobEvent::Failed(format!(
                "this events.jsonl was written by a newer rift (log format {version}; this rift reads up to {EVENTS_FORMAT}): follow it with that rift"
            ))];
        }
        return Vec::new();
    }
    let finished = match &e {
        Event::StageFinished { stage, .. } => Some(*stage),
        _ => None,
    };
    let mut out = vec![JobEvent::Engine(e)];
    out.extend(finished.map(|stage| JobEvent::Finished { stage }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rift::events::Stage;

    #[test]
    fn stage_ends_become_finished_jobs() {
        let v = events_of_line(r#"{"event":"stage_finished","stage":"interpolate","seconds":1.5}"#);
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            JobEvent::Finished {
                stage: Stage::Interpolate
            }
        );
        assert!(events_of_line("").is_empty());
        let bad = events_of_line("{not json");
        assert!(matches!(&bad[0], JobEvent::Engine(Event::Warning { .. })));
    }

    /// A corruption's severities are JSON string keys inside the tagged event: they read.
    #[test]
    fn corruption_lines_read() {
        let v = events_of_line(
            r#"{"event":"corruption","result":{"name":"fog","acc":50.0,"by_severity":{"1":40.0,"2":60.0},"n":20}}"#,
        );
        match &v[..] {
            [JobEvent::Engine(Event::Corruption { result })] => {
                assert_eq!(result.by_severity.get(&2), Some(&60.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn log_format_header() {
        assert!(events_of_line(r#"{"event":"log_format","version":2}"#).is_empty());
        let newer = format!(
            r#"{{"event":"log_format","version":{}}}"#,
            EVENTS_FORMAT + 1
        );
        match &events_of_line(&newer)[..] {
            [JobEvent::Failed(msg)] => assert!(msg.contains("newer rift"), "{msg}"),
            other => panic!("expected one failure, got {other:?}"),
        }
    }

    /// Started before the run: the follower waits for the directory, then for its events
    /// file, saying so, and then follows the lines the run writes.
    #[test]
    fn waits_for_a_directory_the_run_creates_later() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("later");
        let mut rx = follow(&dir).expect("following a missing directory starts");
        let next = |rx: &mut UnboundedReceiver<JobEvent>| {
            for _ in 0..100 {
                if let Ok(e) = rx.try_recv() {
                    return e;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            panic!("no event from the follower within 5 s");
        };
        match next(&mut rx) {
            JobEvent::Note(m) => assert!(m.contains("later") && m.contains("waiting"), "{m}"),
            other => panic!("expected the waiting note, got {other:?}"),
        }
        std::fs::create_dir(&dir).expect("mkdir");
        match next(&mut rx) {
            JobEvent::Note(m) => assert!(m.contains(EVENTS_FILE), "{m}"),
            other => panic!("expected the events-file note, got {other:?}"),
        }
        let line = r#"{"event":"stage_finished","stage":"interpolate","seconds":1.5}"#;
        std::fs::write(dir.join(EVENTS_FILE), format!("{line}\n")).expect("write");
        match next(&mut rx) {
            JobEvent::Note(m) => assert!(m.contains("following"), "{m}"),
            other => panic!("expected the following note, got {other:?}"),
        }
        assert!(matches!(
            next(&mut rx),
            JobEvent::Engine(Event::StageFinished { .. })
        ));
        assert_eq!(
            next(&mut rx),
            JobEvent::Finished {
                stage: Stage::Interpolate
            }
        );
        // A path that is a file is refused at once.
        let file = dir.join(EVENTS_FILE);
        let err = follow(&file).expect_err("a file is not a session directory");
        assert!(format!("{err:#}").contains("not a directory"));
    }

    /// A version-1 line (before typed stages) still reads: same names, no `about`.
    #[test]
    fn version_one_lines_read() {
        let v = events_of_line(
            r#"{"event":"stage_started","stage":"finetune","detail":"conv1 at lr 0.01 for 2 epochs"}"#,
        );
        match &v[..] {
            [JobEvent::Engine(Event::StageStarted { stage, about, .. })] => {
                assert_eq!(*stage, Stage::Finetune);
                assert!(about.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    /// What version 2 writes, an older follower (version 1: `stage` and `detail` strings,
    /// unknown fields ignored) reads: the names and the detail are unchanged.
    #[test]
    fn newer_lines_keep_older_fields() {
        let e = Event::started(
            Stage::Finetune,
            crate::engine::rift::events::StageAbout::Finetune {
                layers: vec!["layer2.1.conv1".into()],
                lr: 0.01,
                epochs: 2,
                from_epoch: 0,
            },
        );
        let v: serde_json::Value = serde_json::to_value(&e).expect("json");
        assert_eq!(v["event"], "stage_started");
        assert_eq!(v["stage"], "finetune");
        assert_eq!(v["detail"], "layer2.1.conv1 at lr 0.01 for 2 epochs");
    }
}
