//! The README's Quick start is the example program, line for line, so that what a newcomer
//! pastes is what `cargo run -p socketio --example quickstart` compiles and runs.

#[test]
fn the_quick_start_is_the_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let example = std::fs::read_to_string(root.join("crates/socketio/examples/quickstart.rs"))
        .expect("quickstart.rs");
    let section = readme
        .split("## Quick start")
        .nth(1)
        .expect("a Quick start section");
    let code = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a rust block in the Quick start");
    assert_eq!(
        code, example,
        "README's Quick start and examples/quickstart.rs differ: copy the example into the README"
    );
}
