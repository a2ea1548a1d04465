//! Panics rift expects and contains (a third-party decoder failing on a hostile file) versus
//! panics that are bugs in rift. The process's panic hook runs before `catch_unwind`
//! returns, so it cannot tell the two apart by itself: [`contain`] marks the current thread
//! while its closure runs, and [`bug_report`] — what the hook prints — is `None` there.
use std::cell::Cell;
use std::panic::{PanicHookInfo, UnwindSafe};

thread_local! {
    /// How many [`contain`] calls are running on this thread (they may nest).
    static CONTAINED: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f`, turning a panic inside it into `Err(message)` without the hook reporting a bug.
pub fn contain<T>(f: impl FnOnce() -> T + UnwindSafe) -> Result<T, String> {
    CONTAINED.with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(f);
    CONTAINED.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown cause".to_string())
    })
}

/// Whether a panic now, on this thread, would be caught by [`contain`].
pub fn is_contained() -> bool {
    CONTAINED.with(|c| c.get() > 0)
}

/// The paragraph the panic hook prints for a bug: where, what, and that it is rift's fault,
/// never the user's. `None` for a panic that [`contain`] is about to catch.
pub fn bug_report(info: &PanicHookInfo) -> Option<String> {
    if is_contained() {
        return None;
    }
    let msg = info
        .payload()
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| info.payload().downcast_ref::<&str>().copied())
        .unwrap_or("unknown cause");
    let loc = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    Some(format!(
        "rift: internal error{loc}: {msg}\nThis is a bug in rift; please report it with the command line you ran."
    ))
}
