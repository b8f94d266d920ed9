use std::path::PathBuf;

use super::*;

fn vars() -> Vars {
    Vars {
        home: "/home/u".into(),
        workspace: "/w/proj".into(),
        user: "u".into(),
    }
}

#[test]
fn substitute_replaces_known_and_rejects_unknown() {
    let v = vars();
    assert_eq!(
        substitute("${HOME}/x:${WORKSPACE}:${USER}", &v).unwrap(),
        "/home/u/x:/w/proj:u"
    );
    assert_eq!(substitute("$HOME and $", &v).unwrap(), "$HOME and $");
    let e = substitute("${FOO}/x", &v).unwrap_err();
    assert_eq!(e.message, "unknown variable `${FOO}`");
    assert_eq!(e.hint.as_deref(), Some(VARS_HINT));
    assert!(substitute("${HOME", &v).is_err());
}

#[test]
fn grant_path_normalises_and_rejects() {
    let v = vars();
    let cases = [
        ("/usr/", "/usr"),
        ("/usr/./lib//x", "/usr/lib/x"),
        ("/", "/"),
        ("${WORKSPACE}/", "/w/proj"),
    ];
    for (input, want) in cases {
        assert_eq!(
            grant_path(input, &v).unwrap(),
            PathBuf::from(want),
            "{input}"
        );
    }
    assert!(grant_path("usr", &v)
        .unwrap_err()
        .message
        .contains("not absolute"));
    assert!(grant_path("/a/../b", &v)
        .unwrap_err()
        .message
        .contains("`..`"));
    assert!(grant_path("/a\0", &v).is_err());
}

#[test]
fn memory_parses_suffixes_and_rejects_junk() {
    let ok = [
        (toml::Value::Integer(4096), 4096),
        (toml::Value::String("4G".into()), 4 << 30),
        (toml::Value::String("512m".into()), 512 << 20),
        (toml::Value::String("1K".into()), 1024),
        (toml::Value::String("2T".into()), 2 << 40),
        (toml::Value::String("100".into()), 100),
    ];
    for (v, want) in ok {
        assert_eq!(memory(&v).unwrap(), want, "{v}");
    }
    for bad in ["4X", "", "G", "-1G", "1.5G", "0", "0G", "99999999999T"] {
        let e = memory(&toml::Value::String(bad.into())).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some(SIZE_HINT), "{bad}");
    }
    assert!(memory(&toml::Value::Integer(-1)).is_err());
    assert!(memory(&toml::Value::Boolean(true)).is_err());
}

#[test]
fn cpu_and_pids_must_be_positive() {
    assert_eq!(cpu(&toml::Value::Integer(2)).unwrap(), 2.0);
    assert_eq!(cpu(&toml::Value::Float(0.5)).unwrap(), 0.5);
    for v in [
        toml::Value::Integer(0),
        toml::Value::Float(-1.0),
        toml::Value::Float(f64::NAN),
        toml::Value::Float(f64::INFINITY),
        toml::Value::String("2".into()),
    ] {
        assert!(cpu(&v).is_err(), "{v}");
    }
    assert_eq!(pids(1024).unwrap(), 1024);
    assert!(pids(0).is_err());
    assert!(pids(-5).is_err());
}

#[test]
fn wall_parses_combined_units_and_round_trips() {
    let ok = [
        ("2h", 7200),
        ("1h30m", 5400),
        ("90s", 90),
        ("1d", 86_400),
        ("1d2h3m4s", 93_784),
        ("90m", 5400),
    ];
    for (s, secs) in ok {
        let d = wall(s).unwrap();
        assert_eq!(d, Duration::from_secs(secs), "{s}");
        assert_eq!(wall(&wall_text(d)).unwrap(), d, "{s}");
    }
    assert_eq!(wall_text(Duration::from_secs(5400)), "1h30m");
    for bad in [
        "", "2", "h", "2x", "30m1h", "1h1h", "0s", "1.5h", "-1h", "2 h",
    ] {
        assert!(wall(bad).is_err(), "{bad}");
    }
}

#[test]
fn env_names_are_checked() {
    assert_eq!(env_pass("LC_*").unwrap(), "LC_*");
    assert_eq!(env_pass("*").unwrap(), "*");
    assert!(env_pass("").is_err());
    assert!(env_pass("A*B").is_err());
    assert!(env_pass("A=B").is_err());
    assert!(env_set_name("GIT_TERMINAL_PROMPT").is_ok());
    assert!(env_set_name("X*").is_err());
}

#[test]
fn modes_parse() {
    assert_eq!(tmp_mode("private").unwrap(), TmpMode::Private);
    assert_eq!(tmp_mode("none").unwrap(), TmpMode::None);
    assert!(tmp_mode("shared").is_err());
    assert_eq!(net_mode("filtered").unwrap(), NetMode::Filtered);
    assert!(net_mode("host").is_err());
}
