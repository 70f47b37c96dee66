//! The core's top-level modules form a layered graph: no module reaches,
//! directly or through others, a module that reaches it back. A reference is
//! any `crate::module` path in a module's files: `use` declarations, paths in
//! code and intra-doc links (`[`crate::budget`]` ties two modules as surely
//! as a `use`, and rustdoc resolves it). Grouped imports
//! (`use crate::{a::X, b}`) count each module they name.
//!
//! This test reads the source files only (it does not use the library), so it
//! runs in milliseconds; it fails naming the cycle.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

fn identifier(text: &[u8], mut i: usize) -> (String, usize) {
    let start = i;
    while i < text.len() && (text[i].is_ascii_alphanumeric() || text[i] == b'_') {
        i += 1;
    }
    (String::from_utf8_lossy(&text[start..i]).into_owned(), i)
}

/// The top-level modules named after `crate::` in `text`.
fn referenced(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut from = 0;
    while let Some(k) = text[from..].find("crate::") {
        let at = from + k;
        from = at + "crate::".len();
        // `acdc_crate::x` or `$crate::` are not paths of this crate
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b'$') {
            continue;
        }
        if bytes.get(from) == Some(&b'{') {
            // grouped: the identifiers at brace depth 1 that start an item
            let mut depth = 0;
            let mut i = from;
            let mut expect_name = true;
            while i < bytes.len() {
                match bytes[i] {
                    b'{' => {
                        depth += 1;
                        expect_name = depth == 1;
                        i += 1;
                    }
                    b'}' => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b',' => {
                        expect_name = depth == 1;
                        i += 1;
                    }
                    c if (c.is_ascii_alphanumeric() || c == b'_') && expect_name => {
                        let (name, next) = identifier(bytes, i);
                        found.insert(name);
                        expect_name = false;
                        i = next;
                    }
                    _ => i += 1,
                }
            }
        } else {
            let (name, _) = identifier(bytes, from);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// After `#[cfg(test)]` (and attributes or `pub(..)` after it), the module
/// it guards: `(name, true)` for an inline `mod name {`, `(name, false)` for
/// a file module `mod name;`.
fn test_module_at(text: &str, at: usize) -> Option<(String, bool)> {
    let mut rest = text[at + "#[cfg(test)]".len()..].trim_start();
    if let Some(r) = rest.strip_prefix("pub") {
        rest = r.trim_start();
        if rest.starts_with('(') {
            rest = rest[rest.find(')')? + 1..].trim_start();
        }
    }
    let rest = rest.strip_prefix("mod")?.trim_start();
    let (name, end) = identifier(rest.as_bytes(), 0);
    match rest[end..].trim_start().as_bytes().first() {
        Some(b'{') => Some((name, true)),
        Some(b';') => Some((name, false)),
        _ => None,
    }
}

/// The text a module compiles outside tests: cut at its first inline
/// `#[cfg(test)] mod … {` (test modules close the file, by convention here),
/// and the names of the file modules it declares for tests only.
fn non_test_text(text: &str) -> (&str, Vec<String>) {
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find("#[cfg(test)]") {
        let at = from + k;
        from = at + 1;
        match test_module_at(text, at) {
            Some((_, true)) => return (&text[..at], test_files),
            Some((name, false)) => test_files.push(name),
            None => {}
        }
    }
    (text, test_files)
}

/// Module → the other top-level modules it references outside its tests
/// (test code checks a module through the layers above it, e.g. a
/// calculator's gradients through a fitted potential; it is not compiled
/// into the library).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" || (path.is_file() && path.extension().is_none_or(|e| e != "rs")) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let refs: &mut BTreeSet<String> = modules.entry(name.clone()).or_default();
        let texts: Vec<(PathBuf, String)> = files.iter().map(|f| (f.clone(), fs::read_to_string(f).unwrap())).collect();
        let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
        for (f, text) in &texts {
            let dir = f.parent().unwrap();
            for m in non_test_text(text).1 {
                test_only.insert(dir.join(format!("{m}.rs")));
                test_only.insert(dir.join(&m).join("mod.rs"));
            }
        }
        for (f, text) in &texts {
            // files under a `tests` folder of src are test-only (the calculators' harness)
            let in_tests = f.strip_prefix(src).is_ok_and(|r| r.components().any(|c| c.as_os_str() == "tests"));
            if !test_only.contains(f) && !in_tests {
                refs.extend(referenced(non_test_text(text).0));
            }
        }
        refs.remove(&name);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    for refs in modules.values_mut() {
        refs.retain(|r| names.contains(r));
    }
    modules
}

/// One cycle of the graph, if any (depth-first search).
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in &g[node] {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == next).unwrap();
                    let mut c = stack[start..].to_vec();
                    c.push(next.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(g, next, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in g.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(g, node, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn parser_sees_uses_groups_and_doc_links() {
    let text = "use crate::error::{Error, Result};\nuse crate::{math::linalg::Dense, system::System};\n/// see [`crate::budget`]\nlet x = crate::tensor::Labels::new();\nuse acdc_crate::nope;";
    let want: BTreeSet<String> = ["error", "math", "system", "budget", "tensor"].iter().map(|s| s.to_string()).collect();
    assert_eq!(referenced(text), want);
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    g.insert("c".to_string(), BTreeSet::new());
    assert_eq!(cycle(&g), None);
    // test modules are left out: inline ones cut the file, file ones are named
    let text = "use crate::a::X;\n#[cfg(test)]\npub(crate) mod helpers;\n#[cfg(test)]\nmod tests {\n    use crate::b::Y;\n}\n";
    let (kept, files) = non_test_text(text);
    assert_eq!(referenced(kept), BTreeSet::from(["a".to_string()]));
    assert_eq!(files, vec!["helpers".to_string()]);
}

#[test]
fn top_level_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() >= 10, "found only {} top-level modules under {}", g.len(), src.display());
    if let Some(c) = cycle(&g) {
        let edges: Vec<String> = g.iter().map(|(m, r)| format!("  {m} → {}", r.iter().cloned().collect::<Vec<_>>().join(", "))).collect();
        panic!("top-level modules import each other: {}\nthe module graph:\n{}", c.join(" → "), edges.join("\n"));
    }
}

/// The names that follow `calculators::` in `text` (a grouped import
/// `calculators::{a, b::C}` gives each item at depth 1), and whether
/// `super::super` occurs (which climbs out of a sub-folder of `calculators`).
fn calculators_paths(text: &str) -> (BTreeSet<String>, bool) {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut from = 0;
    while let Some(k) = text[from..].find("calculators::") {
        let at = from + k + "calculators::".len();
        from = at;
        if bytes.get(at) == Some(&b'{') {
            // the group up to its closing brace, read as a `crate::{…}` import
            let mut depth = 0;
            let mut end = at;
            for (i, &c) in bytes[at..].iter().enumerate() {
                match c {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = at + i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            found.extend(referenced(&format!("crate::{}", &text[at..end])));
        } else {
            let (name, _) = identifier(bytes, at);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    (found, text.contains("super::super"))
}

/// Inside `calculators`, imports run calculators → `soap/` → `shared/`:
/// `shared/` names neither `soap` nor anything of the calculators' level,
/// `soap/` names nothing of the calculators' level (test modules left out,
/// as above: they may check the engine through a calculator).
#[test]
fn calculators_sub_layers_import_downwards() {
    let (paths, climbs) = calculators_paths("use crate::calculators::{shared::X, power_spectrum::Y};\nuse crate::error::E;\nuse super::super::Z;");
    assert_eq!(paths, BTreeSet::from(["shared".to_string(), "power_spectrum".to_string()]));
    assert!(climbs);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/calculators");
    for (layer, allowed) in [("shared", &["shared"][..]), ("soap", &["shared", "soap"][..])] {
        let mut files = Vec::new();
        rust_files(&dir.join(layer), &mut files);
        assert!(files.len() >= 3, "found only {} files under calculators/{layer}", files.len());
        for f in files {
            let text = fs::read_to_string(&f).unwrap();
            let (names, climbs) = calculators_paths(non_test_text(&text).0);
            let upward: Vec<&String> = names.iter().filter(|n| !allowed.contains(&n.as_str())).collect();
            assert!(upward.is_empty(), "{} reaches up to calculators::{upward:?} (calculators/{layer} may use {allowed:?} only)", f.display());
            assert!(!climbs, "{} climbs out of calculators/{layer} with super::super", f.display());
        }
    }
}
