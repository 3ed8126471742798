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

/// A file's code without comments and without the items marked `#[cfg(test)]` (tests may reach
/// anywhere), with the names of the test-only modules it declares in other files (`#[cfg(test)] mod x;`).
fn code(text: &str) -> (String, Vec<String>) {
    let mut rest: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = String::new();
    let mut test_modules = Vec::new();
    const MARK: &str = "#[cfg(test)]";
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let end = item_end(item);
        let words: Vec<&str> = item[..end].split(|c: char| c.is_whitespace() || c == ';').filter(|w| !w.is_empty()).collect();
        if item[..end].ends_with(';') {
            if let Some(i) = words.iter().position(|w| *w == "mod") {
                test_modules.extend(words.get(i + 1).map(|n| n.to_string()));
            }
        }
        rest = item[end..].to_string();
    }
    out.push_str(&rest);
    (out, test_modules)
}

/// Length of the item at the start of `text`: up to its first `;` outside braces, or up to the brace
/// that closes its first `{`.
fn item_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            ';' if depth == 0 => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// Files that are test-only modules: declared `#[cfg(test)] mod x;` by their parent.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for f in files {
        let (_, modules) = code(&std::fs::read_to_string(f).expect("a source file is readable"));
        // `a/mod.rs` and `a.rs` both declare children in `a/`; lib.rs and main.rs in their own folder.
        let parent = f.parent().expect("a source file has a folder");
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let dir = if matches!(stem, "mod" | "lib" | "main") { parent.to_path_buf() } else { parent.join(stem) };
        for m in modules {
            out.insert(dir.join(format!("{m}.rs")));
            out.insert(dir.join(&m).join("mod.rs"));
        }
    }
    out
}

/// module → modules its code refers to as `crate::<module>`.
fn edges(src: &Path, mods: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for m in mods {
        let mut files = Vec::new();
        let dir = src.join(m);
        let root = if dir.is_dir() { dir } else { src.join(format!("{m}.rs")) };
        rust_files(&root, &mut files);
        let test_only = test_only_files(&files);
        let mut to = BTreeSet::new();
        for f in files.iter().filter(|f| !test_only.contains(*f)) {
            let (text, _) = code(&std::fs::read_to_string(f).expect("a source file is readable"));
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

#[test]
fn the_scan_skips_only_the_test_items() {
    let text = "use crate::a;\n#[cfg(test)]\nmod test_helpers;\nuse crate::b;\n#[cfg(test)] pub fn only_in_tests() { if x { crate::c } }\n\
                fn f() { crate::d::g(); } // crate::e\n#[cfg(test)]\nmod tests {\n    use crate::f;\n    fn t() { {} }\n}\nuse crate::h;\n";
    let (code, test_modules) = code(text);
    for kept in ["crate::a", "crate::b", "crate::d", "crate::h"] {
        assert!(code.contains(kept), "{kept} missing from:\n{code}");
    }
    for skipped in ["crate::c", "crate::e", "crate::f", "test_helpers"] {
        assert!(!code.contains(skipped), "{skipped} kept in:\n{code}");
    }
    assert_eq!(test_modules, vec!["test_helpers".to_string()]);
}
