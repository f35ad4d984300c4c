//! The crate's modules import one way along the data flow (docs/ARCHITECTURE.md): read from the `use crate::…`
//! lines of `plugin/`, no module imports one that comes later in [`ORDER`], except the edges [`KNOWN`] lists, which
//! issue 27 is taking apart. A new backward import fails here; so does a known one that is gone (take it off the
//! list).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The top-level modules in data-flow order: each may import those before it.
const ORDER: [&str; 11] = [
    "contract",
    "audio",
    "inference",
    "motion",
    "identity",
    "render",
    "head",
    "display",
    "offline",
    "plugin",
    "lib",
];

/// Backward imports (importer, imported) that exist today and are to be removed.
const KNOWN: [(&str, &str); 7] = [
    // The clock's look-ahead constant lives with the speech model.
    ("audio", "inference"),
    // The motion encoder and the speech model read FaceCoefficients.
    ("inference", "motion"),
    // Motion codes need the rig's bases and the portrait-head marker.
    ("motion", "identity"),
    // The motion systems query TalkingHead and write MotionCode.
    ("motion", "head"),
    // The quality and emotion checks render heads.
    ("identity", "render"),
    // The portrait head's systems read TalkingHead.
    ("identity", "head"),
    // The bust follows the head's pose and layers as the plugin computes them.
    ("display", "plugin"),
];

/// The top-level module a file of `plugin/` belongs to.
fn module_of(path: &Path, root: &Path) -> String {
    let relative = path.strip_prefix(root).expect("under plugin/");
    let first = relative.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules that `source`'s `use crate::…` declarations name (comments and strings aside: only lines
/// that start a `use`).
fn imported(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use crate::") {
        let before = rest[..at].rsplit('\n').next().unwrap_or("").trim();
        let after = &rest[at + "use crate::".len()..];
        let is_use = before.is_empty() || before.starts_with("pub");
        if is_use {
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a::…, b, …}`: the first segment of each path at the group's top level.
                let end = group.find("};").unwrap_or(group.len());
                let mut depth = 0;
                let mut start = true;
                let mut name = String::new();
                for c in group[..end].chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && (c.is_alphanumeric() || c == '_') => name.push(c),
                        _ if start && !name.is_empty() => {
                            found.insert(std::mem::take(&mut name));
                            start = false;
                        }
                        _ => {}
                    }
                }
                if !name.is_empty() {
                    found.insert(name);
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
        rest = after;
    }
    found
}

#[test]
fn modules_import_along_the_data_flow() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let rank = |module: &str| ORDER.iter().position(|m| *m == module);
    let mut backward = BTreeSet::new();
    for file in &files {
        let importer = module_of(file, &root);
        let Some(from) = rank(&importer) else {
            panic!("{importer} ({}) is not in ORDER", file.display());
        };
        let source = std::fs::read_to_string(file).expect("readable");
        for imported in imported(&source) {
            let Some(to) = rank(&imported) else {
                // Not a top-level module (a macro or an item of lib.rs).
                continue;
            };
            if to > from {
                backward.insert((importer.clone(), imported));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    for (a, b) in &known {
        println!("known backward import, to be removed: {a} -> {b}");
    }
    let new: Vec<_> = backward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports against the data flow ({}): {new:?}",
        ORDER.join(" < ")
    );
    let gone: Vec<_> = known.difference(&backward).collect();
    assert!(
        gone.is_empty(),
        "no longer imported, take them off KNOWN: {gone:?}"
    );
}

#[test]
fn use_lines_are_read_with_their_groups() {
    let source = "use crate::audio::clock::X;\n// use crate::render::Y;\npub(crate) use crate::{\n    motion::{A, B},\n    head::C,\n};\nlet s = \"use crate::plugin\";\n";
    let names: Vec<String> = imported(source).into_iter().collect();
    assert_eq!(names, ["audio", "head", "motion"]);
}
