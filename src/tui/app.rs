//! The app loop: a current-thread tokio runtime `select!`s over a 100 ms tick, the
//! terminal's events, the job events and the signals that end a terminal program; pending
//! job events are drained before each draw, and the screen is redrawn only when something
//! changed. The terminal (raw mode, alternate screen, mouse capture) is restored on quit,
//! on error, on SIGINT/SIGTERM/SIGHUP and, through the panic hook, on panic.
use super::keys::to_msg;
use super::restore::restore;
use super::state::State;
use super::theme::{theme_set, Theme};
use super::update::{update, Cmd, Msg};
use super::view;
use crate::jobs::{JobEvent, JobHandle};
use crate::report::session::Session;
use anyhow::Result;
use futures::StreamExt;
use ratatui::crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream, KeyEventKind,
    MouseButton, MouseEventKind,
};
use ratatui::crossterm::execute;
use ratatui::layout::Rect;
use ratatui::DefaultTerminal;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;

/// What the explorer starts with.
pub struct AppOptions {
    pub theme: Option<String>,
    pub lr: f64,
    pub tolerance: f64,
    pub ft_epochs: usize,
    /// `--resume`: the saved session every panel starts from (MRC runs only if it has none).
    pub resume: Option<Session>,
    /// `--follow`: what is being watched; the explorer then starts nothing itself.
    pub follow: Option<String>,
    /// A corrupted test set is there: accepting an α evaluates OOD accuracy.
    pub ood: bool,
}

/// Where the explorer's events come from: its own worker, or a followed run (no worker).
pub type Source = (Option<JobHandle>, UnboundedReceiver<JobEvent>);

/// The explorer's first state, before any event.
pub fn initial_state(opts: &AppOptions, themes: &[Theme]) -> State {
    let names = themes.iter().map(|t| t.name.clone()).collect();
    let mut state = State::new(opts.lr, opts.tolerance, opts.ft_epochs, names);
    state.ood_enabled = opts.ood;
    if let Some(session) = &opts.resume {
        restore(&mut state, session);
    }
    if let Some(what) = &opts.follow {
        state.read_only = Some(what.clone());
        state.status = format!("following {what} (read-only)");
    }
    state
}

/// Runs the explorer until the user quits; the worker is shut down on the way out.
pub fn run(source: Source, opts: AppOptions) -> Result<()> {
    let (mut handle, rx) = source;
    let (themes, warning) = theme_set(opts.theme.as_deref());
    let mut state = initial_state(&opts, &themes);
    if let Some(w) = warning {
        state.error = Some(w);
    }
    let start_mrc = opts.follow.is_none() && opts.resume.as_ref().is_none_or(|s| s.mrc.is_none());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut terminal = ratatui::init();
    // ratatui's hook restores raw mode and the screen; mouse capture is ours to undo.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        hook(info);
    }));
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let mut io = Io {
        handle: handle.as_ref(),
        trace: Trace::from_env(),
    };
    let result = rt.block_on(event_loop(
        &mut terminal,
        &mut state,
        &themes,
        &mut io,
        rx,
        start_mrc,
    ));
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    if let Some(h) = &mut handle {
        h.shutdown();
    }
    result
}

/// The outside world of the loop: the worker (absent when following) and the trace.
struct Io<'a> {
    handle: Option<&'a JobHandle>,
    trace: Trace,
}

/// Applies a message and carries out its command; true when the screen must change.
fn apply(state: &mut State, msg: Msg, io: &Io) -> bool {
    let before = state.clone();
    match update(state, msg) {
        Some(Cmd::Job(c)) => {
            if !io.handle.is_some_and(|h| h.send(c)) {
                update(state, Msg::WorkerGone);
            }
        }
        Some(Cmd::Cancel) => {
            if let Some(h) = io.handle {
                h.cancel();
            }
        }
        Some(Cmd::Quit) | None => {}
    }
    *state != before
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    state: &mut State,
    themes: &[Theme],
    io: &mut Io<'_>,
    mut rx: UnboundedReceiver<JobEvent>,
    start_mrc: bool,
) -> Result<()> {
    let start = Instant::now();
    let mut term_events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut rx_open = true;
    if start_mrc {
        apply(state, Msg::Start, io);
    }
    let mut dirty = true;
    loop {
        if dirty {
            let theme = themes.get(state.theme).unwrap_or(&themes[0]);
            let t = Instant::now();
            terminal.draw(|f| view::draw(f, state, theme))?;
            io.trace.draw(start, t);
            dirty = false;
        }
        if state.quit {
            return Ok(());
        }
        tokio::select! {
            _ = tick.tick() => {
                // The clock matters only for the ETA of a running job.
                state.now = start.elapsed().as_secs_f64();
                dirty |= state.busy;
            }
            // A signal from outside (kill, a closed terminal): leave cleanly, now.
            _ = sigint.recv() => dirty |= apply(state, Msg::ForceQuit, io),
            _ = sigterm.recv() => dirty |= apply(state, Msg::ForceQuit, io),
            _ = sighup.recv() => dirty |= apply(state, Msg::ForceQuit, io),
            ev = term_events.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    let changed = to_msg(k, state).is_some_and(|msg| apply(state, msg, io));
                    io.trace.key(start, changed);
                    dirty |= changed;
                }
                Some(Ok(TermEvent::Mouse(m))) if m.kind == MouseEventKind::Down(MouseButton::Left) => {
                    let size = terminal.size()?;
                    let area = Rect::new(0, 0, size.width, size.height);
                    if let Some(msg) = view::hit(area, state, m.column, m.row) {
                        dirty |= apply(state, msg, io);
                    }
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            ev = rx.recv(), if rx_open => match ev {
                Some(e) => {
                    dirty |= apply(state, Msg::Job(e), io);
                    while let Ok(e) = rx.try_recv() {
                        dirty |= apply(state, Msg::Job(e), io);
                    }
                }
                None => {
                    rx_open = false;
                    // A followed run's file reader never ends on its own; a worker does.
                    if io.handle.is_some() {
                        dirty |= apply(state, Msg::WorkerGone, io);
                    }
                }
            },
        }
    }
}

/// `RIFT_TUI_TRACE=FILE`: one line per key press (`key MICROS CHANGED`, 1 when the key
/// changed the screen) and per redraw
/// (`draw MICROS RENDER_MICROS`), microseconds since start, each with the wall clock in
/// Unix microseconds last (to match keys sent from outside), for the latency benchmark.
struct Trace(Option<std::io::BufWriter<std::fs::File>>);

impl Trace {
    fn from_env() -> Trace {
        let file = std::env::var_os("RIFT_TUI_TRACE").and_then(|p| std::fs::File::create(p).ok());
        Trace(file.map(std::io::BufWriter::new))
    }
    fn key(&mut self, start: Instant, changed: bool) {
        if let Some(w) = &mut self.0 {
            let _ = writeln!(
                w,
                "key {} {} {}",
                start.elapsed().as_micros(),
                u8::from(changed),
                unix_micros()
            );
            let _ = w.flush();
        }
    }
    fn draw(&mut self, start: Instant, began: Instant) {
        if let Some(w) = &mut self.0 {
            let _ = writeln!(
                w,
                "draw {} {} {}",
                start.elapsed().as_micros(),
                began.elapsed().as_micros(),
                unix_micros()
            );
            let _ = w.flush();
        }
    }
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}
