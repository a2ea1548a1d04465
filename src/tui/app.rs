//! The app loop: a current-thread tokio runtime `select!`s over a 100 ms tick, the
//! terminal's events and the worker's events; pending job events are drained before each
//! draw, and the screen is redrawn only when something changed. The terminal is restored
//! on quit, on error and (through ratatui's hook) on panic.
use super::keys::to_msg;
use super::state::State;
use super::theme::{theme_set, Theme};
use super::update::{update, Cmd, Msg};
use super::view;
use crate::jobs::{JobEvent, JobHandle};
use anyhow::Result;
use futures::StreamExt;
use ratatui::crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use ratatui::DefaultTerminal;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// What the explorer starts with.
pub struct AppOptions {
    pub theme: Option<String>,
    pub lr: f64,
    pub tolerance: f64,
    pub ft_epochs: usize,
}

/// Runs the explorer until the user quits; the worker is shut down on the way out.
pub fn run(mut handle: JobHandle, rx: UnboundedReceiver<JobEvent>, opts: AppOptions) -> Result<()> {
    let (themes, warning) = theme_set(opts.theme.as_deref());
    let names = themes.iter().map(|t| t.name.clone()).collect();
    let mut state = State::new(opts.lr, opts.tolerance, opts.ft_epochs, names);
    if let Some(w) = warning {
        state.error = Some(w);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = ratatui::init();
    let result = rt.block_on(event_loop(&mut terminal, &mut state, &themes, &handle, rx));
    ratatui::restore();
    handle.shutdown();
    result
}

/// Applies a message and carries out its command; true when the screen must change.
fn apply(state: &mut State, msg: Msg, handle: &JobHandle) -> bool {
    let before = state.clone();
    match update(state, msg) {
        Some(Cmd::Job(c)) => {
            if !handle.send(c) {
                update(state, Msg::WorkerGone);
            }
        }
        Some(Cmd::Cancel) => handle.cancel(),
        Some(Cmd::Quit) | None => {}
    }
    *state != before
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    state: &mut State,
    themes: &[Theme],
    handle: &JobHandle,
    mut rx: UnboundedReceiver<JobEvent>,
) -> Result<()> {
    let start = Instant::now();
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut rx_open = true;
    apply(state, Msg::Start, handle);
    let mut dirty = true;
    loop {
        if dirty {
            let theme = themes.get(state.theme).unwrap_or(&themes[0]);
            terminal.draw(|f| view::draw(f, state, theme))?;
            dirty = false;
        }
        if state.quit {
            return Ok(());
        }
        tokio::select! {
            _ = tick.tick() => {
                // The clock matters only for the ETA of a running job.
                let busy = state.busy;
                state.now = start.elapsed().as_secs_f64();
                dirty |= busy;
            }
            ev = keys.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    if let Some(msg) = to_msg(k, state) {
                        dirty |= apply(state, msg, handle);
                    }
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            ev = rx.recv(), if rx_open => match ev {
                Some(e) => {
                    dirty |= apply(state, Msg::Job(e), handle);
                    while let Ok(e) = rx.try_recv() {
                        dirty |= apply(state, Msg::Job(e), handle);
                    }
                }
                None => {
                    rx_open = false;
                    dirty |= apply(state, Msg::WorkerGone, handle);
                }
            },
        }
    }
}
