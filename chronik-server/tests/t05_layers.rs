//! The server's top-level modules form layers: every `crate::<module>` reference in a module's
//! non-test code points at a module that does not, directly or through others, point back. A use
//! cycle fails this test with the path that closes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/` (files and folders), without the crate roots.
fn modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src is readable").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            out.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                out.insert(stem.to_string());
            }
        }
    }
    out
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("a source folder is readable").flatten() {
            rust_files(&entry.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// A file's code without comments and without its `#[cfg(test)]` part (tests may reach anywhere).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// module → modules its code refers to as `crate::<module>`.
fn edges(src: &Path, mods: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for m in mods {
        let mut files = Vec::new();
        let dir = src.join(m);
        let root = if dir.is_dir() { dir } else { src.join(format!("{m}.rs")) };
        rust_files(&root, &mut files);
        let mut to = BTreeSet::new();
        for f in files {
            let text = code(&std::fs::read_to_string(&f).expect("a source file is readable"));
            for (at, _) in text.match_indices("crate::") {
                let name: String = text[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if mods.contains(&name) && name != *m {
                    to.insert(name);
                }
            }
        }
        graph.insert(m.clone(), to);
    }
    graph
}

/// A path from `from` back to `to`, if any.
fn path_to(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_string()]);
    }
    if !seen.insert(from.to_string()) {
        return None;
    }
    for next in graph.get(from).into_iter().flatten() {
        if let Some(mut rest) = path_to(graph, next, to, seen) {
            rest.insert(0, from.to_string());
            return Some(rest);
        }
    }
    None
}

#[test]
fn no_use_cycle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let graph = edges(&src, &mods);
    let mut cycles = Vec::new();
    for (m, to) in &graph {
        for next in to {
            if let Some(back) = path_to(&graph, next, m, &mut BTreeSet::new()) {
                cycles.push(format!("{m} -> {}", back.join(" -> ")));
            }
        }
    }
    for (m, to) in &graph {
        println!("{m} -> {}", to.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert!(cycles.is_empty(), "use cycles between chronik-server's modules:\n{}", cycles.join("\n"));
}
