//! The layout of `dns-user/src` as the README states it: each plane imports only the
//! planes below it, and no two files of a folder import each other in a cycle. Read
//! from the sources, so a new `use` that breaks a rule fails here, naming the file.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The library's planes, lowest first, and what each may import.
const PLANES: &[(&str, &[&str])] = &[
    ("protocol", &[]),
    ("model", &["protocol"]),
    ("store", &["model", "protocol"]),
    ("resolution", &["store", "model", "protocol"]),
    ("fastpath", &["protocol", "model"]),
    ("engine", &["resolution", "fastpath", "store", "protocol", "model"]),
    ("frontend", &["engine", "store"]),
    ("control", &["engine", "resolution", "store", "model", "protocol"]),
    // Management over HTTP: through the store like the CLI, never the maps.
    ("api", &["frontend", "control", "resolution", "store", "model", "protocol"]),
];

/// The binary's folders (on top of every plane) and what each may import of the binary.
const BINARY: &[(&str, &[&str])] = &[("daemon", &[]), ("commands", &["daemon"])];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dns-user/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("dns-user/src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src`: `fastpath/kernel.rs` is [fastpath, kernel],
/// `fastpath/mod.rs` is [fastpath].
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).expect("below src");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every path a file names: its `use` trees expanded, and paths written inline.
fn paths_in(source: &str) -> Vec<String> {
    // Comments and string literals name no modules.
    let code: String =
        source.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    // `use` items start a line (after `pub` or `pub(...)`) and end at the first `;`.
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let item = line.trim_start();
        let item = item.strip_prefix("pub ").or_else(|| item.strip_prefix("pub(crate) ")).unwrap_or(item);
        let Some(tree) = item.strip_prefix("use ") else { continue };
        let mut tree = tree.to_owned();
        while !tree.contains(';') {
            let Some(more) = lines.next() else { break };
            tree.push_str(more);
        }
        expand("", tree.split(';').next().unwrap_or_default(), &mut out);
    }
    for prefix in ["crate::", "super::", "instadns::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let start = &rest[at..];
            let path: String =
                start.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            out.push(path.trim_end_matches(':').to_owned());
            rest = &rest[at + prefix.len()..];
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d}}`) into full paths, each prefixed by `prefix`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut item = String::new();
        for c in inner.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &std::mem::take(&mut item), out);
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        expand(&base, &item, out);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(join(prefix, name));
    }
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}::{path}"),
    }
}

/// The module a path names, absolute from its crate's root (`super::` resolved against
/// `module`), and whether it names the library (`instadns::`); None for other crates.
fn target(path: &str, module: &[String]) -> Option<(bool, Vec<String>)> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let library = match parts.first() {
        Some(&"crate") => {
            parts.remove(0);
            false
        }
        Some(&"instadns") => {
            parts.remove(0);
            true
        }
        Some(&"super") => {
            // Each `super` leaves one module (a mod.rs file's module is its folder).
            let ups = parts.iter().take_while(|p| **p == "super").count();
            let base = module.len().saturating_sub(ups);
            let path = module[..base].iter().cloned().chain(parts[ups..].iter().map(|p| p.to_string()));
            return Some((false, path.collect()));
        }
        _ => return None,
    };
    Some((library, parts.iter().map(|p| p.to_string()).collect()))
}

struct File {
    path: PathBuf,
    module: Vec<String>,
    binary: bool,
    /// (names the library, absolute module path) of every path it names.
    targets: Vec<(bool, Vec<String>)>,
}

fn files() -> Vec<File> {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let module = module_of(&path);
            let binary = path.ends_with("main.rs")
                || module.first().is_some_and(|top| BINARY.iter().any(|(name, _)| name == top));
            let source = std::fs::read_to_string(&path).expect("source");
            let targets = paths_in(&source)
                .iter()
                .filter_map(|p| target(p, &module))
                .map(|(library, t)| (library || !binary, t))
                .collect();
            File { path, module, binary, targets }
        })
        .collect()
}

#[test]
fn each_plane_imports_only_the_planes_below_it() {
    let mut violations = Vec::new();
    let mut checked = 0;
    for f in files() {
        let Some(top) = f.module.first() else { continue };
        for (library, target) in &f.targets {
            // A glob of the crate root (`use super::*` in a plane's mod.rs tests).
            let Some(to) = target.first().filter(|t| *t != "*") else { continue };
            if to == top {
                continue;
            }
            checked += 1;
            let allowed = match (f.binary, *library) {
                // The binary may use every plane of the library.
                (true, true) => PLANES.iter().any(|(p, _)| p == to),
                (true, false) => BINARY.iter().any(|(b, may)| b == top && may.contains(&to.as_str())),
                (false, _) => PLANES.iter().any(|(p, may)| p == top && may.contains(&to.as_str())),
            };
            if !allowed {
                violations.push(format!("{}: {top} imports {}", f.path.display(), target.join("::")));
            }
        }
    }
    assert!(checked > 50, "the scan found only {checked} imports across planes");
    assert!(violations.is_empty(), "imports against the layering:\n{}", violations.join("\n"));
}

#[test]
fn no_two_files_of_a_folder_import_each_other_in_a_cycle() {
    // Edges between sibling files (a folder's mod.rs and its children are one unit).
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in files().into_iter().filter(|f| !f.path.ends_with("mod.rs") && f.module.len() >= 2) {
        let folder = &f.module[..f.module.len() - 1];
        for (library, target) in &f.targets {
            let sibling = *library != f.binary
                && target.len() > folder.len()
                && target[..folder.len()] == *folder
                && target[folder.len()] != f.module[folder.len()];
            if sibling {
                let to = target[..=folder.len()].to_vec();
                graph.entry(f.module.clone()).or_default().insert(to);
            }
        }
    }
    assert!(graph.values().map(BTreeSet::len).sum::<usize>() > 10, "the scan found too few sibling imports");
    // Depth-first search for a back edge.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| n == node) {
            let cycle: Vec<String> = stack[at..].iter().chain([node]).map(|m| m.join("::")).collect();
            cycles.push(cycle.join(" -> "));
            return;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
        done.insert(node.clone());
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles between files of a folder:\n{}", cycles.join("\n"));
}
