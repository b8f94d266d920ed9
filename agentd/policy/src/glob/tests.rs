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
