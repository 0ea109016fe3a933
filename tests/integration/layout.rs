//! The source tree's shape, checked like behaviour: no file-level import cycle in `src/` or
//! `cores/src/`, and no domain or foundation module that names `crate::state` (issue 15;
//! `docs/architecture.md`, "Layers").
//!
//! A file A depends on file B when A names a path that resolves into B: `crate::x::y` anywhere
//! in its text (use declarations, inline paths and doc links alike), `super::…` and `self::…`
//! relative to A's module, and bare paths starting with one of A's child modules. A path
//! resolves to the longest prefix of it that is a module on disk (`x.rs` or `x/mod.rs`). The
//! crate root (`lib.rs`) only declares modules and is left out. Text, not the compiler's view:
//! a doc link is a dependency of the reader, if not of the build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["camera", "registry"]`) → file, for the crate whose root is `src/lib.rs`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut segs: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if segs.last().map(String::as_str) == Some("mod") {
                segs.pop();
            }
            if segs == ["lib"] || segs == ["main"] {
                segs.clear();
            }
            if segs.first().map(String::as_str) == Some("bin") {
                continue;
            }
            out.insert(segs, path);
        }
    }
    out
}

/// Every `a::b::c` path written in `text`, with `{…}` groups expanded (`crate::x::{y, z::w}`
/// gives `crate::x::y` and `crate::x::z::w`).
fn paths(text: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    // Prefixes of the `{` groups we are inside, innermost last.
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'}' {
            groups.pop();
            i += 1;
            continue;
        }
        if !ident(b) || (i > 0 && (ident(bytes[i - 1]))) {
            i += 1;
            continue;
        }
        // A path: identifiers joined by `::`.
        let start = i;
        let mut segs = Vec::new();
        let mut open_group = false;
        loop {
            let s = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            segs.push(text[s..i].to_string());
            if text[i..].starts_with("::") {
                i += 2;
                if bytes.get(i) == Some(&b'{') {
                    open_group = true;
                    i += 1;
                    break;
                }
                if !bytes.get(i).copied().is_some_and(ident) {
                    break;
                }
            } else {
                break;
            }
        }
        // A path that starts right after `{` or `,` inside a group continues its prefix.
        let before = text[..start].trim_end();
        let mut full = match groups.last() {
            Some(prefix) if before.ends_with('{') || before.ends_with(',') => {
                let mut p = prefix.clone();
                p.extend(segs.iter().filter(|s| *s != "self").cloned());
                p
            }
            _ => segs,
        };
        if open_group {
            groups.push(full.clone());
        } else if full.len() > 1 || !groups.is_empty() {
            out.push(std::mem::take(&mut full));
        }
    }
    out
}

/// The files `path` (module `me`) depends on.
fn deps(mods: &BTreeMap<Vec<String>, PathBuf>, me: &[String], path: &Path) -> BTreeSet<PathBuf> {
    let text = std::fs::read_to_string(path).expect("read");
    let mut out = BTreeSet::new();
    for p in paths(&text) {
        let (mut base, rest): (Vec<String>, &[String]) = match p[0].as_str() {
            "crate" => (Vec::new(), &p[1..]),
            "self" => (me.to_vec(), &p[1..]),
            "super" => (me[..me.len().saturating_sub(1)].to_vec(), &p[1..]),
            first => {
                // A bare path into one of this module's children.
                let mut child = me.to_vec();
                child.push(first.to_string());
                if !mods.contains_key(&child) {
                    continue;
                }
                (me.to_vec(), &p[..])
            }
        };
        let mut rest = rest;
        while rest.first().map(String::as_str) == Some("super") {
            base.pop();
            rest = &rest[1..];
        }
        base.extend(rest.iter().cloned());
        let target = (0..=base.len())
            .rev()
            .find_map(|n| mods.get(&base[..n]).filter(|_| n > 0 || base.is_empty()));
        if let Some(t) = target {
            if t != path && !base.is_empty() {
                out.insert(t.clone());
            }
        }
    }
    out
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct T<'g> {
        graph: &'g BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'g PathBuf, usize>,
        low: BTreeMap<&'g PathBuf, usize>,
        stack: Vec<&'g PathBuf>,
        on: BTreeSet<&'g PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g PathBuf) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = t.graph.get_key_value(w) else {
                continue;
            };
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn cycles_of(src: &Path) -> Vec<Vec<PathBuf>> {
    let mods = modules(src);
    let root = mods.get(&Vec::new()).cloned();
    let graph: BTreeMap<PathBuf, BTreeSet<PathBuf>> = mods
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, f)| {
            let mut d = deps(&mods, m, f);
            if let Some(r) = &root {
                d.remove(r);
            }
            (f.clone(), d)
        })
        .collect();
    cycles(&graph)
}

#[test]
fn no_import_cycles_between_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for src in ["src", "cores/src"] {
        for c in cycles_of(&root.join(src)) {
            let names: Vec<String> = c
                .iter()
                .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
                .collect();
            found.push(names.join(" ↔ "));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles (docs/architecture.md, \"Layers\"):\n{}",
        found.join("\n")
    );
}

/// The modules that may use the composition root (`docs/architecture.md`, "Layers"): the server
/// that builds it, the transport and protocol layers and the methods it is handed to, and the
/// fuzzing entry points that build their own. Every other module — the domain and the
/// foundation, including any module added later — is handed the handles it uses and never names
/// `ServerState`'s module.
const MAY_USE_STATE: &[&str] = &[
    "state", "server", "shard", "net", "fleet", "rpc", "methods", "fuzzing",
];

#[test]
fn domain_and_foundation_modules_do_not_use_the_server_state() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mods = modules(&src);
    let state = mods
        .get(&vec!["state".to_string()])
        .expect("src/state.rs")
        .clone();
    let mut found = Vec::new();
    for (m, f) in &mods {
        let Some(top) = m.first() else { continue };
        if MAY_USE_STATE.contains(&top.as_str()) {
            continue;
        }
        if deps(&mods, m, f).contains(&state) {
            found.push(f.strip_prefix(root).unwrap_or(f).display().to_string());
        }
    }
    assert!(
        found.is_empty(),
        "these modules use crate::state; hand them the handles they need instead \
         (docs/architecture.md, \"Layers\"):\n{}",
        found.join("\n")
    );
}

/// The checker itself: it must see a cycle written every way the tree writes imports.
#[test]
fn the_cycle_checker_sees_each_kind_of_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\npub mod c;\n").expect("write");
    // a/mod.rs uses its child bare; the child uses its parent through `super`.
    std::fs::write(src.join("a/mod.rs"), "pub mod kid;\nfn f() { kid::g() }\n").expect("write");
    std::fs::write(src.join("a/kid.rs"), "use super::{X, Y};\n").expect("write");
    // b and c through a `crate::{…}` group and an inline path.
    std::fs::write(src.join("b.rs"), "use crate::{c::Z, a};\n").expect("write");
    std::fs::write(src.join("c.rs"), "fn h() { crate::b::w() }\n").expect("write");
    let found = cycles_of(src);
    assert_eq!(found.len(), 2, "{found:?}");
    // A leaf breaks them.
    std::fs::write(src.join("a/kid.rs"), "use crate::c;\n").expect("write");
    std::fs::write(src.join("c.rs"), "fn h() {}\n").expect("write");
    assert!(cycles_of(src).is_empty(), "{:?}", cycles_of(src));
}
