use std::path::{Path, PathBuf};

use super::*;

fn g(p: &str) -> Glob {
    Glob::new(p).unwrap()
}

#[test]
fn segment_matches_star_question_and_literals() {
    let cases = [
        ("*", "", true),
        ("*", "abc", true),
        ("a*", "abc", true),
        ("*c", "abc", true),
        ("a*c", "ac", true),
        ("a*c", "abxc", true),
        ("a*c", "abcd", false),
        ("*.pem", ".x.pem", true),
        ("*.pem", "x.pem.bak", false),
        ("?", "a", true),
        ("?", "", false),
        ("?", "ab", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("*a*b*", "xxaxxbxx", true),
        ("*a*b*", "xxbxxaxx", false),
        ("[ab]", "[ab]", true),
        ("[ab]", "a", false),
        ("é?", "éü", true),
        ("abc", "abc", true),
        ("abc", "abd", false),
    ];
    for (p, s, want) in cases {
        assert_eq!(segment_matches(p, s), want, "{p:?} vs {s:?}");
    }
}

#[test]
fn glob_matches_table() {
    let cases = [
        ("/home/u/.ssh", "/home/u/.ssh", true),
        ("/home/u/.ssh", "/home/u/.ssh/id_ed25519", false),
        ("/home/u/.ssh", "/home/u", false),
        ("/w/**/.env", "/w/.env", true),
        ("/w/**/.env", "/w/a/b/.env", true),
        ("/w/**/.env", "/x/.env", false),
        ("/w/**/.env", "/w/a/.env/x", false),
        ("/w/**/*.pem", "/w/k.pem", true),
        ("/w/**/*.pem", "/w/a/k.pem", true),
        ("/w/**/*.pem", "/w/a/k.pem.txt", false),
        ("**/*.pem", "/k.pem", true),
        ("**/*.pem", "/a/b/c/k.pem", true),
        ("*.pem", "/a/b/k.pem", true),
        (".env", "/a/.env", true),
        (".env", "/a/.envrc", false),
        ("/w/**", "/w", true),
        ("/w/**", "/w/a/b", true),
        ("/w/**", "/x", false),
        ("/**", "/", true),
        ("/", "/", true),
        ("/", "/a", false),
        ("/a/*/c", "/a/b/c", true),
        ("/a/*/c", "/a/c", false),
        ("/a/*/c", "/a/b/b/c", false),
        ("/a/**/**/c", "/a/c", true),
        ("/a/**/b/**/c", "/a/x/b/y/z/c", true),
        ("/a/**/b/**/c", "/a/x/y/z/c", false),
        ("/a/./b/", "/a/b", true),
        ("/a//b", "/a/b", true),
    ];
    for (p, path, want) in cases {
        assert_eq!(g(p).matches(Path::new(path)), want, "{p:?} vs {path:?}");
    }
}

#[test]
fn glob_matches_or_below_table() {
    let cases = [
        ("/home/u/.ssh", "/home/u/.ssh", true),
        ("/home/u/.ssh", "/home/u/.ssh/id_ed25519", true),
        ("/home/u/.ssh", "/home/u/.sshx", false),
        ("/home/u/.ssh", "/home/u", false),
        ("/w/**/.env", "/w/a/.env/x", true),
        ("/w/**/.env", "/w/a/x", false),
        ("**/*.pem", "/a/k.pem/inner", true),
        ("/", "/anything/at/all", true),
    ];
    for (p, path, want) in cases {
        assert_eq!(
            g(p).matches_or_below(Path::new(path)),
            want,
            "{p:?} vs {path:?}"
        );
    }
}

#[test]
fn glob_matches_relative_or_dotdot_path_returns_false() {
    assert!(!g("**").matches(Path::new("a/b")));
    assert!(!g("**").matches(Path::new("/a/../b")));
    assert!(g("**").matches(Path::new("/a/./b")));
}

#[test]
fn glob_new_rejects_bad_patterns() {
    for p in ["", "/a/../b", "..", "/a/b**", "/a/**x/c", "/a\0"] {
        assert!(Glob::new(p).is_err(), "{p:?}");
    }
}

#[test]
fn glob_literal_prefix_and_is_literal() {
    let cases = [
        ("/home/u/.ssh", "/home/u/.ssh", true),
        ("/w/**/.env", "/w", false),
        ("/w/a*/b", "/w", false),
        ("/w/a?/b", "/w", false),
        ("**/*.pem", "/", false),
        (".env", "/", false),
        ("/", "/", true),
        ("/a/./b/", "/a/b", true),
    ];
    for (p, prefix, literal) in cases {
        let glob = g(p);
        assert_eq!(glob.literal_prefix(), PathBuf::from(prefix), "{p:?}");
        assert_eq!(glob.is_literal(), literal, "{p:?}");
    }
}

#[test]
fn glob_as_str_keeps_pattern_as_written() {
    assert_eq!(g("**/*.pem").as_str(), "**/*.pem");
    assert_eq!(g("/a/./b/").as_str(), "/a/./b/");
    assert_eq!(g("/a/b").to_string(), "/a/b");
}

#[test]
fn argv_glob_matches_joined_arguments() {
    let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let cases = [
        ("* push *", "git push origin main", true),
        ("* push *", "git push", false),
        ("* push*", "git push", true),
        ("git push", "git push", true),
        ("git push", "git pushx", false),
        ("git ?ush *", "git push -f", true),
        ("*", "", true),
        ("rm -rf *", "rm -rf /", true),
        ("rm -rf *", "rm -r /", false),
    ];
    for (pattern, line, want) in cases {
        let g = ArgvGlob::new(pattern).unwrap();
        assert_eq!(g.matches(&argv(line)), want, "{pattern:?} vs {line:?}");
    }
    assert!(ArgvGlob::new("").is_err());
    assert!(ArgvGlob::new("a\0b").is_err());
    assert!(!ArgvGlob::new("x").unwrap().matches(&[]));
    assert!(ArgvGlob::new("*").unwrap().matches(&[]));
}

// --- the allocation-free matcher: literal prefix, `**`, deep paths, non-ASCII, non-UTF-8 ---

/// The matcher as it was before it worked on bytes without allocating, kept as the
/// specification for UTF-8 paths: names converted to `String`s, a table over pattern segments
/// × names, segments compared as `Vec<char>`s.
mod reference {
    use std::path::{Component, Path};

    #[derive(PartialEq)]
    enum Seg {
        Any,
        Part(String),
    }

    pub struct Glob(Vec<Seg>);

    /// `None` where `Glob::new` is an error.
    pub fn compile(pattern: &str) -> Option<Glob> {
        if pattern.is_empty() || pattern.contains('\0') {
            return None;
        }
        let mut segs = Vec::new();
        if !pattern.starts_with('/') {
            segs.push(Seg::Any);
        }
        for s in pattern.split('/') {
            match s {
                "" | "." => {}
                ".." => return None,
                "**" => {
                    if segs.last() != Some(&Seg::Any) {
                        segs.push(Seg::Any);
                    }
                }
                s if s.contains("**") => return None,
                s => segs.push(Seg::Part(s.to_string())),
            }
        }
        Some(Glob(segs))
    }

    pub fn reference_match(glob: &Glob, path: &Path, below: bool) -> bool {
        let Some(names) = segments(path) else {
            return false;
        };
        let n = names.len();
        let mut done: Vec<bool> = (0..=n).map(|j| below || j == n).collect();
        for seg in glob.0.iter().rev() {
            let mut cur = vec![false; n + 1];
            for j in (0..=n).rev() {
                cur[j] = match seg {
                    Seg::Any => done[j] || (j < n && cur[j + 1]),
                    Seg::Part(p) => j < n && done[j + 1] && segment_matches(p, &names[j]),
                };
            }
            done = cur;
        }
        done[0]
    }

    fn segments(path: &Path) -> Option<Vec<String>> {
        let mut comps = path.components();
        if comps.next() != Some(Component::RootDir) {
            return None;
        }
        let mut out = Vec::new();
        for c in comps {
            match c {
                Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(out)
    }

    pub fn segment_matches(pattern: &str, name: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let s: Vec<char> = name.chars().collect();
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, si));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                _ => match star {
                    Some((sp, ss)) => {
                        pi = sp + 1;
                        si = ss + 1;
                        star = Some((sp, ss + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

/// Both modes of `pattern` on `path`, checked against the reference.
fn both(pattern: &str, path: &Path) -> (bool, bool) {
    let glob = g(pattern);
    let got = (glob.matches(path), glob.matches_or_below(path));
    let r = reference::compile(pattern).unwrap();
    let want = (
        reference::reference_match(&r, path, false),
        reference::reference_match(&r, path, true),
    );
    assert_eq!(got, want, "{pattern:?} vs {path:?}");
    got
}

#[test]
fn literal_prefix_rejects_and_accepts_by_whole_names() {
    let cases = [
        // (pattern, path, matches, matches_or_below)
        ("/home/u/.ssh", "/etc/hostname", false, false),
        ("/home/u/.ssh", "/home/v/.ssh", false, false),
        ("/home/u/.ssh", "/home/u/.sshx", false, false),
        ("/home/u/.ssh", "/home/u/.ss", false, false),
        ("/home/u/.ssh", "/home/u", false, false),
        ("/home/u/.ssh", "/", false, false),
        ("/home/u/.ssh", "/home//u/./.ssh/", true, true),
        ("/home/u/.ssh", "/home/u/.ssh/id_rsa", false, true),
        ("/home/u/ws/**/.env", "/home/u/wsx/.env", false, false),
        ("/home/u/ws/**/.env", "/home/u/ws/.env", true, true),
        ("/home/u/ws/**/.env", "/home/u/ws/a/.env/b", false, true),
        ("/home/u/ws/*.pem", "/home/u/ws/k.pem", true, true),
        ("/home/u/ws/*.pem", "/home/u/k.pem", false, false),
    ];
    for (p, path, m, below) in cases {
        assert_eq!(both(p, Path::new(path)), (m, below), "{p:?} vs {path:?}");
    }
    // `..` anywhere makes the path unusable, also past a mismatch or below a match.
    for path in [
        "/home/u/.ssh/../x",
        "/etc/../home/u/.ssh",
        "/home/u/.ssh/k/..",
    ] {
        assert_eq!(
            both("/home/u/.ssh", Path::new(path)),
            (false, false),
            "{path}"
        );
        assert_eq!(both("/**", Path::new(path)), (false, false), "{path}");
    }
}

#[test]
fn double_star_at_start_middle_and_end() {
    let cases = [
        ("/**/b", "/b", true, true),
        ("/**/b", "/a/a/b", true, true),
        ("/**/b", "/a/b/c", false, true),
        ("/**/b", "/a/c", false, false),
        ("**/b/c", "/b/c/b/c", true, true),
        ("**/b/c", "/b/b/c", true, true),
        ("**/b/c", "/b/c/b", false, true),
        ("/a/**/b/*/d", "/a/b/b/c/d", true, true),
        ("/a/**/b/*/d", "/a/b/c/b/d", false, false),
        ("/a/**/b/**/c", "/a/b/c", true, true),
        ("/a/**/b/**/c", "/a/c/b", false, false),
        ("/a/**", "/a", true, true),
        ("/a/**", "/a/b/c", true, true),
        ("/a/**", "/b", false, false),
        ("/a/*/**", "/a", false, false),
        ("/a/*/**", "/a/x", true, true),
        ("**", "/", true, true),
        ("**", "/a/b", true, true),
        ("/**/**", "/", true, true),
    ];
    for (p, path, m, below) in cases {
        assert_eq!(both(p, Path::new(path)), (m, below), "{p:?} vs {path:?}");
    }
}

#[test]
fn deep_paths_match_like_the_reference() {
    for depth in [63, 64, 65, 100, 300] {
        let deep = format!("{}/x", "/d".repeat(depth));
        let literal = deep.clone();
        let cases = [
            ("/**/x", true),
            ("**/d/x", true),
            ("/d/**/d/x", true),
            ("/d/*/**/x", true),
            ("x", true),
            ("/**/y", false),
            ("/d/**/d/d/y", false),
            ("**/d/**/d/**/x", true),
            ("/*/*/*", false),
            (literal.as_str(), true),
        ];
        for (p, want) in cases {
            assert_eq!(both(p, Path::new(&deep)).0, want, "{p:?} at depth {depth}");
        }
        let below = format!("{deep}/y/z");
        assert_eq!(both(&literal, Path::new(&below)), (false, true));
        assert_eq!(both("/**/x", Path::new(&below)), (false, true));
    }
}

#[test]
fn question_mark_takes_one_character_not_one_byte() {
    let cases = [
        // é: 2 bytes, €: 3 bytes, 😀: 4 bytes.
        ("?", "é", true),
        ("?", "€", true),
        ("?", "😀", true),
        ("??", "€", false),
        ("??", "😀", false),
        ("*??", "€", false),
        ("*?", "€", true),
        ("?€", "é€", true),
        ("a*é", "aéé", true),
        ("a*é", "aée", false),
        ("*€", "x€", true),
        ("*€*", "€", true),
        ("é*", "e\u{301}", false),
        ("?.pem", "€.pem", true),
        ("??.pem", "€.pem", false),
        // A `*` retried one byte further would let `??` take the last two bytes of €.
        ("*??c*", "€cx", false),
        ("*??c*", "€ccx", true),
        ("*?c", "😀bc", true),
        ("*??c", "😀c", false),
    ];
    for (p, name, want) in cases {
        assert_eq!(
            wildcard_match(p, name.as_bytes()),
            want,
            "{p:?} vs {name:?}"
        );
        assert_eq!(
            reference::segment_matches(p, name),
            want,
            "{p:?} vs {name:?}"
        );
        let path = format!("/w/{name}");
        assert_eq!(both(&format!("/w/{p}"), Path::new(&path)).0, want);
    }
}

#[test]
fn names_that_are_not_utf8_match_bytewise() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    // A byte that begins no UTF-8 character is one character that only `?` and `*` match.
    let cases: [(&str, &[u8], bool); 16] = [
        ("*.pem", b"\xff.pem", true),
        ("?.pem", b"\xff.pem", true),
        ("??.pem", b"\xff.pem", false),
        ("??.pem", b"\xff\xfe.pem", true),
        ("*", b"\xff", true),
        ("\u{FFFD}", b"\xff", false),
        ("\u{FFFD}", "\u{FFFD}".as_bytes(), true),
        // A truncated é (0xc3) is one character, and so is each byte of a truncated €.
        ("é?", b"\xc3x", false),
        ("??", b"\xc3x", true),
        ("?", b"\xe2\x82", false),
        ("??", b"\xe2\x82", true),
        // Literals still find the valid characters around the invalid bytes.
        ("*é", b"\xc3\xc3\xa9", true),
        ("?é", b"\xc3\xc3\xa9", true),
        ("é*", b"\xc3\xc3\xa9", false),
        ("a*b", b"a\xff\x80b", true),
        ("a?b", b"a\xff\x80b", false),
    ];
    for (p, name, want) in cases {
        assert_eq!(wildcard_match(p, name), want, "{p:?} vs {name:?}");
        let mut path = b"/w/".to_vec();
        path.extend_from_slice(name);
        let path = Path::new(OsStr::from_bytes(&path));
        let glob = g(&format!("/w/{p}"));
        assert_eq!(glob.matches(path), want, "{p:?} vs {path:?}");
        assert_eq!(glob.matches_or_below(path), want, "{p:?} vs {path:?}");
    }
    // In the literal prefix and below a match, such names are plain names.
    let path = |b: &[u8]| Path::new(OsStr::from_bytes(b)).to_path_buf();
    assert!(g("/home/*/x").matches(&path(b"/home/\xff/x")));
    assert!(g("/home/?/x").matches(&path(b"/home/\xff/x")));
    assert!(!g("/home/u/x").matches(&path(b"/home/\xff/x")));
    assert!(g("/home/u/.ssh").matches_or_below(&path(b"/home/u/.ssh/\xff\xfe")));
    assert!(g("**/*.pem").matches_or_below(&path(b"/a/\xc3.pem/b")));
}

#[test]
fn dot_components_are_skipped_and_slashes_collapsed() {
    let cases = [
        ("/a/b", "/a/./b", true),
        ("/a/b", "/./a/b", true),
        ("/a/b", "/a/b/.", true),
        ("/a/b", "//a//b//", true),
        ("/a/*", "/a/.", false),
        ("/a/**/.env", "/a/./x/./.env", true),
        ("**/.env", "/./.env", true),
        ("/a/?", "/a/.", false),
        ("/a/.*", "/a/.x", true),
    ];
    for (p, path, want) in cases {
        assert_eq!(both(p, Path::new(path)).0, want, "{p:?} vs {path:?}");
    }
    assert!(!g("**").matches(Path::new("./a")));
    assert!(!g("**").matches(Path::new("")));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

    #[test]
    fn matches_agrees_with_the_reference(pattern in pattern(), path in path()) {
        let r = reference::compile(&pattern);
        let glob = Glob::new(&pattern);
        proptest::prop_assert_eq!(glob.is_ok(), r.is_some(), "{:?}", pattern);
        if let (Ok(glob), Some(r)) = (glob, r) {
            let path = Path::new(&path);
            proptest::prop_assert_eq!(
                glob.matches(path),
                reference::reference_match(&r, path, false),
                "{:?} vs {:?}", pattern, path
            );
            proptest::prop_assert_eq!(
                glob.matches_or_below(path),
                reference::reference_match(&r, path, true),
                "{:?} vs {:?} (or below)", pattern, path
            );
        }
    }

}

proptest::proptest! {
    // Names are cheap to match: many more cases.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16384))]

    #[test]
    fn segment_matches_agrees_with_the_reference(p in word("ab*?€", 6), s in word("ab€", 8)) {
        proptest::prop_assert_eq!(
            segment_matches(&p, &s),
            reference::segment_matches(&p, &s),
            "{:?} vs {:?}", p, s
        );
    }

    /// On names that are not UTF-8, the matcher is the reference on the name decoded with each
    /// byte that begins no character turned into a character of its own, which no pattern here
    /// contains.
    #[test]
    fn wildcard_match_on_bytes_is_the_reference_on_decoded_names(
        p in word("ab*?é€", 6),
        name in proptest::collection::vec(
            proptest::sample::select(vec![
                &b"a"[..], b"b", "é".as_bytes(), "€".as_bytes(),
                b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xe2",
            ]),
            0..6,
        ),
    ) {
        let name = name.concat();
        let decoded: String = name
            .utf8_chunks()
            .flat_map(|c| {
                let bad = c.invalid().iter().map(|&b| char::from_u32(0xE000 + u32::from(b)));
                c.valid().chars().map(Some).chain(bad)
            })
            .map(Option::unwrap)
            .collect();
        proptest::prop_assert_eq!(
            wildcard_match(&p, &name),
            reference::segment_matches(&p, &decoded),
            "{:?} vs {:?}", p, name
        );
    }

    /// `Names` splits a path as `Path::components` does.
    #[test]
    fn names_are_the_components_of_the_path(
        bytes in proptest::collection::vec(
            proptest::sample::select(vec![b'/', b'/', b'.', b'a', 0xff]),
            0..12,
        ),
    ) {
        use std::os::unix::ffi::OsStrExt;
        use std::path::Component;

        let path = Path::new(std::ffi::OsStr::from_bytes(&bytes));
        let mut comps = path.components();
        let want: Option<Vec<&[u8]>> = if comps.next() == Some(Component::RootDir) {
            comps
                .filter(|c| *c != Component::CurDir)
                .map(|c| match c {
                    Component::Normal(s) => Some(s.as_bytes()),
                    _ => None,
                })
                .collect()
        } else {
            None
        };
        let got: Option<Vec<&[u8]>> = Names::of(path).ok().and_then(|mut names| {
            let mut out = Vec::new();
            loop {
                match names.next() {
                    Ok(Some(n)) => out.push(n),
                    Ok(None) => return Some(out),
                    Err(NotNormal) => return None,
                }
            }
        });
        proptest::prop_assert_eq!(got, want, "{:?}", path);
    }
}

/// A string of up to `max` characters of `alphabet`.
fn word(alphabet: &str, max: usize) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let chars: Vec<char> = alphabet.chars().collect();
    proptest::collection::vec(proptest::sample::select(chars), 0..=max)
        .prop_map(|v| v.into_iter().collect())
}

/// Patterns over a small alphabet, `**` segments included; some are invalid (`..`, `a**`).
fn pattern() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let seg = prop_oneof![3 => word("ab.*?é", 3), 1 => Just("**".to_string())];
    (any::<bool>(), proptest::collection::vec(seg, 0..6))
        .prop_map(|(abs, segs)| format!("{}{}", if abs { "/" } else { "" }, segs.join("/")))
}

/// Paths over a small alphabet; some are relative or hold `.`, `..` or empty names.
fn path() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    (
        prop::bool::weighted(0.9),
        proptest::collection::vec(word("ab.*?é€", 3), 0..8),
    )
        .prop_map(|(abs, segs)| format!("{}{}", if abs { "/" } else { "" }, segs.join("/")))
}
