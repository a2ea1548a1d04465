//! What the explorer reacts to: keys and clicks (through `keys.rs` and `view::hit`), the
//! worker's events and the clock. `update` turns each into a change of the state.
use crate::jobs::JobEvent;

#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// The app has started: compute the baseline and MRC.
    Start,
    Job(JobEvent),
    /// The job channel closed: the worker has ended.
    WorkerGone,
    /// Seconds since the app started.
    Tick(f64),
    Up,
    Down,
    /// A click on a module's bar: its index in display order.
    SelectModule(usize),
    /// A click on the α chart: the sweep point nearest to this α.
    SelectAlpha(f64),
    FineTune,
    LrDown,
    LrUp,
    AlphaLeft,
    AlphaRight,
    /// `v`: the α panel's other view (changes from AT against α / the clean-vs-robust plane).
    AlphaView,
    Refine,
    Accept,
    Save,
    Sort,
    NextTheme,
    Cancel,
    /// `e`: AutoAttack of the AT and the accepted model (`aa_check.rs`).
    AutoAttack,
    /// `m`: the compare view on or off (`candidates.rs`).
    CompareView,
    /// Enter in the compare view: show the selected candidate.
    ShowCandidate,
    Help,
    /// Close the help or the quit question.
    Dismiss,
    Quit,
    ConfirmQuit,
    /// Ctrl-C: leave now, unsaved or not.
    ForceQuit,
}
