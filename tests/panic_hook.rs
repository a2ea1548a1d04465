//! The panic hook's bug report against contained panics (`engine::panics`): a panic that
//! `contain` catches (a JPEG decoder failing on a hostile file) prints nothing, one outside
//! prints "This is a bug in rift". No JPEG is known that makes zune-jpeg 0.5 panic (the
//! fuzzer found none), so the mechanism is exercised with a panic of its own; its own test
//! binary, so that no other test's panics reach the hook installed here.
use rift::engine::panics::{bug_report, contain, is_contained};
use std::sync::{Arc, Mutex};

#[test]
fn contained_panics_report_nothing_and_others_report_a_bug() {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // What main.rs's hook would print, recorded instead of printed.
        seen.lock().unwrap().push(bug_report(info));
    }));

    assert!(!is_contained());
    let caught = contain(|| -> u8 { panic!("decoder overflow on a hostile file") });
    assert_eq!(
        caught,
        Err("decoder overflow on a hostile file".to_string())
    );
    assert!(!is_contained(), "the mark outlives the contained panic");
    assert_eq!(contain(|| 7), Ok(7));
    // Nested: the inner panic is contained, the outer call still marked afterwards.
    let nested = contain(|| {
        let inner = contain(|| -> u8 { panic!("inner") });
        (inner.is_err(), is_contained())
    });
    assert_eq!(nested, Ok((true, true)));
    // A panic outside `contain` is a bug.
    let bug = std::panic::catch_unwind(|| -> u8 { panic!("index out of bounds") });
    assert!(bug.is_err());

    std::panic::set_hook(previous);
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports[0].is_none() && reports[1].is_none(), "{reports:?}");
    let text = reports[2].as_deref().expect("a bug report");
    assert!(
        text.contains("This is a bug in rift") && text.contains("index out of bounds"),
        "{text}"
    );
}
