//! The layout rule "no module circles" as a check that can fail: no two files of src/
//! import each other, directly or around a loop (tests/py/module_cycles.py).
mod common;

#[test]
fn no_module_imports_itself_through_others() {
    let script = std::fs::read_to_string("tests/py/module_cycles.py").unwrap();
    let out = common::run_python(&script, &[]);
    let cycles: Vec<&str> = out.lines().filter(|l| l.starts_with("cycle:")).collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}
