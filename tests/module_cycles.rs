//! No cycle between the library's top-level modules (`app`, `http`,
//! `schedule`, `report`, `config`, `roster`, `campaign`, `delivery`,
//! `tracking`, ...). Reads every file under src/ (the binary's `main.rs` and
//! `cli/` sit above the library and are left out), takes its `crate::…`
//! paths (grouped `crate::{a, b}` ones, `super::` paths that climb to the
//! crate root, and names `lib.rs` re-exports, like `crate::App`), builds the
//! graph of top-level modules and fails naming each cycle with the lines
//! that make it. `.ci/run` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where one module uses another: file and line, for the failure message.
type Edges = BTreeMap<(String, String), Vec<String>>;

#[test]
fn top_level_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let (modules, reexports) = crate_root(&lib);
    assert!(
        modules.contains("app") && modules.contains("http"),
        "lib.rs not understood"
    );
    let edges = module_edges(&src, &modules, &reexports);
    assert!(
        edges.contains_key(&("app".to_string(), "http".to_string())),
        "the scan found no use of http in app: it reads nothing"
    );
    let cycles = cycles(&modules, &edges);
    assert!(cycles.is_empty(), "{}", describe(&cycles, &edges));
}

/// The top-level modules (`pub mod x;` / `mod x;`) and the names lib.rs
/// re-exports (`pub use app::App;` makes `crate::App` a use of `app`).
fn crate_root(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        let line = line.strip_prefix("pub ").unwrap_or(line);
        if let Some(name) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
            modules.insert(name.trim().to_string());
        } else if let Some(path) = line.strip_prefix("use ").and_then(|l| l.strip_suffix(';')) {
            let path = path.trim_start_matches("crate::");
            if let (Some((module, _)), Some(name)) =
                (path.split_once("::"), path.rsplit("::").next())
            {
                let name = name.rsplit(" as ").next().unwrap_or(name).trim();
                reexports.insert(name.to_string(), module.to_string());
            }
        }
    }
    (modules, reexports)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every use of another top-level module, by (from, to).
fn module_edges(
    src: &Path,
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Edges {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = Edges::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        let from = parts[0].clone();
        if !modules.contains(&from) {
            continue; // lib.rs, main.rs, cli/: above the library's modules
        }
        // Module depth below the crate root: `super::` this many times is the root.
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod"));
        let text = std::fs::read_to_string(&file).unwrap();
        // Comments out, lines kept: a grouped `use` spans several lines.
        let code: Vec<&str> = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect();
        let code = code.join("\n");
        for (offset, target) in referenced(&code, depth) {
            let to = reexports.get(&target).cloned().unwrap_or(target);
            if to != from && modules.contains(&to) {
                let n = code[..offset].matches('\n').count();
                let line = text.lines().nth(n).unwrap_or("").trim();
                let at = format!("src/{}:{}: {line}", rel.display(), n + 1);
                edges.entry((from.clone(), to)).or_default().push(at);
            }
        }
    }
    edges
}

/// The first segment after the crate root in each path, with its offset.
fn referenced(code: &str, depth: usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let preceded = code[..i].chars().last();
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in macros, `other_crate::`
        }
        let rest = &code[i + "crate::".len()..];
        found.extend(segments(rest).into_iter().map(|s| (i, s)));
    }
    if depth > 0 {
        let supers = "super::".repeat(depth);
        for (i, _) in code.match_indices(&supers) {
            let rest = &code[i + supers.len()..];
            let climbs_further = rest.starts_with("super::") || code[..i].ends_with("super::");
            if !climbs_further {
                found.extend(segments(rest).into_iter().map(|s| (i, s)));
            }
        }
    }
    found
}

/// `x::…` gives x; `{a, b::{c, d}}` gives a and b (top level of the group).
fn segments(path: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = path.strip_prefix('{') else {
        return vec![ident(path)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
    };
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    items.into_iter().filter(|s| !s.is_empty()).collect()
}

/// One cycle per strongly connected group of modules (by depth-first search
/// from each module back to itself inside its group).
fn cycles(modules: &BTreeSet<String>, edges: &Edges) -> Vec<Vec<String>> {
    let next = |m: &str| -> Vec<String> {
        edges
            .keys()
            .filter(|(from, _)| from == m)
            .map(|(_, to)| to.clone())
            .collect()
    };
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut found = Vec::new();
    for start in modules {
        if reported.contains(start) {
            continue;
        }
        if let Some(path) = path_back(start, start, &next, &mut BTreeSet::new()) {
            reported.extend(path.iter().cloned());
            found.push(path);
        }
    }
    found
}

/// A path from `at` to `goal` (starting with `at`), if one exists.
fn path_back(
    at: &str,
    goal: &str,
    next: &dyn Fn(&str) -> Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for to in next(at) {
        if to == goal {
            return Some(vec![at.to_string(), to]);
        }
        if seen.insert(to.clone()) {
            if let Some(mut rest) = path_back(&to, goal, next, seen) {
                rest.insert(0, at.to_string());
                return Some(rest);
            }
        }
    }
    None
}

fn describe(cycles: &[Vec<String>], edges: &Edges) -> String {
    let mut text = String::from(
        "cycles between top-level modules; move the shared type to the lower module (or a small new one):\n",
    );
    for cycle in cycles {
        text.push_str(&format!("\n  {}\n", cycle.join(" -> ")));
        for pair in cycle.windows(2) {
            let key = (pair[0].clone(), pair[1].clone());
            for at in edges[&key].iter().take(3) {
                text.push_str(&format!("    {} -> {}: {at}\n", pair[0], pair[1]));
            }
        }
    }
    text
}

#[test]
fn paths_are_read_as_the_compiler_resolves_them() {
    let names = |code: &str, depth| -> Vec<String> {
        referenced(code, depth)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    };
    assert_eq!(names("use crate::store::Store;", 1), ["store"]);
    assert_eq!(
        names(
            "use crate::{\n    clock::{self, Clock},\n    store::Store,\n};",
            1
        ),
        ["clock", "store"]
    );
    assert_eq!(names("use super::super::Store;", 2), ["Store"]);
    assert!(names("use super::Store;", 2).is_empty());
    assert!(names("use super::super::super::x;", 2).is_empty());
    assert!(names("$crate::x!()", 1).is_empty());
    let lib = "pub mod app;\nmod http;\npub use app::App;\n";
    let (modules, reexports) = crate_root(lib);
    assert_eq!(modules, BTreeSet::from(["app".into(), "http".into()]));
    assert_eq!(reexports["App"], "app");
}

#[test]
fn a_cycle_is_found_and_named() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
    let edge = |f: &str, t: &str| ((f.to_string(), t.to_string()), vec![format!("{f}.rs:1")]);
    let edges: Edges = [
        edge("a", "b"),
        edge("b", "c"),
        edge("c", "a"),
        edge("c", "d"),
    ]
    .into();
    let found = cycles(&modules, &edges);
    assert_eq!(found, [vec!["a", "b", "c", "a"]]);
    assert!(describe(&found, &edges).contains("c -> a: c.rs:1"));
    edges_without_cycle_pass(&modules);
}

fn edges_without_cycle_pass(modules: &BTreeSet<String>) {
    let edge = |f: &str, t: &str| ((f.to_string(), t.to_string()), vec![String::new()]);
    let edges: Edges = [edge("a", "b"), edge("b", "c"), edge("a", "c")].into();
    assert!(cycles(modules, &edges).is_empty());
}
