use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn vars() -> Vars {
    Vars {
        home: "/home/u".into(),
        workspace: "/w/proj".into(),
        user: "u".into(),
    }
}

fn load(text: &str) -> Result<Policy, PolicyError> {
    Loader::new(vec![]).load_str("t", Path::new("p.toml"), text, &vars())
}

/// A fresh temporary directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("agentd-policy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[test]
fn load_str_errors_point_at_file_line_col() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "",
            "p.toml:1:1: missing key `version`",
            Some("start the file with `version = 1`"),
        ),
        (
            "version = 2\n",
            "p.toml:1:11: unsupported policy version 2",
            Some("write `version = 1`"),
        ),
        ("version = \"1\"\n", "p.toml:1:11: invalid type", None),
        ("version = 1\nversion = 1\n", "p.toml:2:1: ", None),
        (
            "version = 1\n[filesystem]\nwirte = []\n",
            "p.toml:3:1: unknown key `wirte`",
            Some("valid keys here: read, write, exec, tmp, hide"),
        ),
        (
            "version = 1\n[filesystem]\nread = [\"/usr\", 1]\n",
            "p.toml:3:17: invalid type",
            None,
        ),
        (
            "version = 1\n[filesystem]\nread = [\"/usr\"\n",
            "p.toml:3:15: ",
            None,
        ),
        (
            "version = 1\n[filesystem]\nread = [\"/usr\", \"usr\"]\n",
            "p.toml:3:17: path `usr` is not absolute",
            Some("write an absolute path or start it with ${WORKSPACE} or ${HOME}"),
        ),
        (
            "version = 1\n[filesystem]\nwrite = [\"/a/../b\"]\n",
            "p.toml:3:10: path `/a/../b` contains `..`",
            None,
        ),
        (
            "version = 1\n[filesystem]\nexec = [\"${FOO}/bin\"]\n",
            "p.toml:3:9: unknown variable `${FOO}`",
            Some("the variables are ${HOME}, ${WORKSPACE}, ${USER}"),
        ),
        (
            "version = 1\n[filesystem]\ntmp = \"shared\"\n",
            "p.toml:3:7: unknown tmp mode `shared`",
            None,
        ),
        (
            "version = 1\n[filesystem]\nhide = [\"/a/**x\"]\n",
            "p.toml:3:9: `**` must be a whole segment",
            None,
        ),
        (
            "version = 1\n[filesystem]\nhide = [\"${NOPE}\"]\n",
            "p.toml:3:9: unknown variable",
            None,
        ),
        (
            "version = 1\n[env]\npass = [\"A*B\"]\n",
            "p.toml:3:9: invalid variable name `A*B`",
            None,
        ),
        (
            "version = 1\n[env.set]\n\"A=B\" = \"x\"\n",
            "p.toml:3:1: invalid variable name `A=B`",
            None,
        ),
        (
            "version = 1\n[env.set]\nX = \"${BAD}\"\n",
            "p.toml:3:5: unknown variable `${BAD}`",
            None,
        ),
        (
            "version = 1\n[env.set]\nX = 1\n",
            "p.toml:3:5: invalid type",
            None,
        ),
        (
            "version = 1\n[network]\nmode = \"host\"\n",
            "p.toml:3:8: unknown network mode `host`",
            None,
        ),
        (
            "version = 1\n[network]\nmode = \"filtered\"\nallow = [\"exa_mple.com:443\"]\n",
            "p.toml:4:10: invalid IP address or host name `exa_mple.com`",
            None,
        ),
        (
            "version = 1\n[network]\nallow = [\"example.com:443\"]\n",
            "p.toml:3:10: network.allow needs mode = \"filtered\"",
            None,
        ),
        (
            "version = 1\n[network]\nmode = \"filtered\"\nallow = [\"10.0.0.1/8:443\"]\n",
            "p.toml:4:10: host bits set in `10.0.0.1/8`",
            Some("write the network address: 10.0.0.0/8"),
        ),
        (
            "version = 1\n[network]\nmode = \"filtered\"\nallow = [\"10.0.0.0/33:443\"]\n",
            "p.toml:4:10: invalid prefix length `/33`",
            None,
        ),
        (
            "version = 1\n[network]\nmode = \"filtered\"\nallow = [\"[::1]:0\"]\n",
            "p.toml:4:10: invalid port `0`",
            None,
        ),
        (
            "version = 1\n[network]\nallow = [\"127.0.0.1:80\"]\n",
            "p.toml:3:10: network.allow needs mode = \"filtered\"",
            Some("set mode = \"filtered\" in [network]"),
        ),
        (
            "version = 1\n[resources]\nmemory = \"4X\"\n",
            "p.toml:3:10: invalid memory size \"4X\"",
            Some("write a size like \"512M\" or \"4G\""),
        ),
        (
            "version = 1\n[resources]\nmemory = 0\n",
            "p.toml:3:10: memory must be more than zero",
            None,
        ),
        (
            "version = 1\n[resources]\npids = -1\n",
            "p.toml:3:8: pids must be more than zero",
            None,
        ),
        (
            "version = 1\n[resources]\ncpu = 0\n",
            "p.toml:3:7: cpu must be a number of cores",
            None,
        ),
        (
            "version = 1\n[resources]\ncpu = \"2\"\n",
            "p.toml:3:7: cpu must be a number of cores",
            None,
        ),
        (
            "version = 1\n[resources]\nwall = \"2x\"\n",
            "p.toml:3:8: invalid duration \"2x\"",
            None,
        ),
        (
            "version = 1\n[resources]\nwall = \"0s\"\n",
            "p.toml:3:8: wall must be more than zero",
            None,
        ),
        (
            "version = 1\n[resources]\nwall = 60\n",
            "p.toml:3:8: invalid type",
            None,
        ),
        (
            "version = 1\n[resources]\ndisk = 1\n",
            "p.toml:3:1: unknown key `disk`",
            Some("valid keys here: memory, pids, cpu, wall"),
        ),
        (
            "version = 1\nextends = [\"nosuch\"]\n",
            "p.toml:2:12: cannot extend: policy `nosuch` not found",
            None,
        ),
        (
            "version = 1\nextends = [\"./nosuch.toml\"]\n",
            "p.toml:2:12: cannot extend: cannot read policy",
            None,
        ),
        (
            "# é\nversion = 1\n[filesystem]\n  tmp = \"é\"\n",
            "p.toml:4:9: unknown tmp mode `é`",
            None,
        ),
    ];
    check_errors(cases);
}

fn check_errors(cases: &[(&str, &str, Option<&str>)]) {
    for (text, prefix, hint) in cases {
        let e = load(text).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(prefix),
            "{text:?}\n got: {shown}\nwant: {prefix}"
        );
        assert!(!shown.ends_with('.'), "{shown}");
        if let Some(hint) = hint {
            assert_eq!(e.hint(), Some(*hint), "{text:?}");
        }
    }
}

#[test]
fn load_str_minimal_gets_defaults() {
    let p = load("version = 1\n").unwrap();
    assert_eq!(p.name, "t");
    assert_eq!(p.sources, vec![PathBuf::from("p.toml")]);
    assert_eq!(p.filesystem, Filesystem::default());
    assert_eq!(p.filesystem.tmp, TmpMode::Private);
    assert_eq!(p.env, EnvPolicy::default());
    assert_eq!(p.network, Network::default());
    assert_eq!(p.resources, Resources::default());
}

const FULL: &str = r#"
version = 1
[filesystem]
read  = ["/usr", "/etc/", "/usr", "/lib/./x"]
write = ["${WORKSPACE}"]
tmp   = "none"
exec  = ["/usr", "/bin"]
hide  = ["${WORKSPACE}/**/.env", "**/*.pem", "${HOME}/.ssh"]
[env]
pass = ["PATH", "LC_*"]
set  = { GIT_TERMINAL_PROMPT = "0", WHO = "${USER}@${HOME}", Q = "a \"q\"\n" }
[network]
mode  = "filtered"
allow = ["127.0.0.1:8080", "10.0.0.0/8:443", "[::1]:8080", "[fd00::/8]:443"]
[resources]
memory = "4G"
pids = 1024
cpu = 1.5
wall = "1h30m"
"#;

#[test]
fn load_str_full_compiles_every_key() {
    let p = load(FULL).unwrap();
    let fs = &p.filesystem;
    let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
    assert_eq!(fs.read, paths(&["/usr", "/etc", "/lib/x"]));
    assert_eq!(fs.write, paths(&["/w/proj"]));
    assert_eq!(fs.exec, paths(&["/usr", "/bin"]));
    assert_eq!(fs.tmp, TmpMode::None);
    let hide: Vec<&str> = fs.hide.iter().map(Glob::as_str).collect();
    assert_eq!(hide, ["/w/proj/**/.env", "**/*.pem", "/home/u/.ssh"]);
    assert_eq!(p.env.pass, ["PATH", "LC_*"]);
    assert_eq!(p.env.set["WHO"], "u@/home/u");
    assert_eq!(p.network.mode, NetMode::Filtered);
    assert_eq!(p.network.allow.len(), 4);
    assert_eq!(p.resources.memory, Some(4 << 30));
    assert_eq!(p.resources.pids, Some(1024));
    assert_eq!(p.resources.cpu, Some(1.5));
    assert_eq!(p.resources.wall, Some(Duration::from_secs(5400)));
}

#[test]
fn to_toml_reparses_to_equal_policy() {
    for text in [FULL, "version = 1\n"] {
        let p = load(text).unwrap();
        let emitted = p.to_toml();
        assert!(emitted.starts_with("# effective policy \"t\", merged from:\n#   \"p.toml\"\n"));
        let mut again = Loader::new(vec![])
            .load_str("t", Path::new("e.toml"), &emitted, &vars())
            .unwrap();
        again.sources = p.sources.clone();
        assert_eq!(again, p, "{emitted}");
    }
}

#[test]
fn extends_merges_bases_first_and_extending_file_wins() {
    let dir = temp_dir("merge");
    std::fs::write(
        dir.join("base.toml"),
        "version = 1\n[filesystem]\nread = [\"/usr\", \"/etc\"]\ntmp = \"none\"\n\
         [env]\npass = [\"PATH\"]\nset = { A = \"base\", B = \"base\" }\n\
         [resources]\nmemory = \"1G\"\npids = 10\n",
    )
    .unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/mid.toml"),
        "version = 1\nextends = [\"base\"]\n[filesystem]\nread = [\"/opt\", \"/usr\"]\n",
    )
    .unwrap();
    let top = "version = 1\nextends = [\"sub/mid.toml\", \"base\"]\n\
               [filesystem]\nread = [\"/srv\", \"/etc\"]\n\
               [env]\npass = [\"HOME\", \"PATH\"]\nset = { A = \"top\" }\n\
               [resources]\npids = 20\n";
    let loader = Loader::new(vec![dir.join("nonexistent"), dir.0.clone()]);
    let p = loader
        .load_str("top", &dir.join("top.toml"), top, &vars())
        .unwrap();

    let read: Vec<PathBuf> = ["/usr", "/etc", "/opt", "/srv"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(p.filesystem.read, read);
    assert_eq!(p.filesystem.tmp, TmpMode::None);
    assert_eq!(p.env.pass, ["PATH", "HOME"]);
    assert_eq!(p.env.set["A"], "top");
    assert_eq!(p.env.set["B"], "base");
    assert_eq!(p.resources.memory, Some(1 << 30));
    assert_eq!(p.resources.pids, Some(20));
    let sources = [
        dir.join("base.toml"),
        dir.join("sub/mid.toml"),
        dir.join("top.toml"),
    ];
    assert_eq!(p.sources, sources);
}

#[test]
fn extends_cycle_is_reported_at_the_entry() {
    let dir = temp_dir("cycle");
    std::fs::write(dir.join("a.toml"), "version = 1\nextends = [\"b\"]\n").unwrap();
    std::fs::write(dir.join("b.toml"), "version = 1\n\nextends = [\"a\"]\n").unwrap();
    let e = Loader::new(vec![dir.0.clone()])
        .load("a", &vars())
        .unwrap_err();
    assert!(matches!(e, PolicyError::Cycle { .. }), "{e}");
    let b = dir.join("b.toml");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3:12: extends cycle: ", b.display())),
        "{e}"
    );
    assert!(e.hint().is_some());
}

#[test]
fn extends_deeper_than_limit_is_an_error() {
    let dir = temp_dir("deep");
    for i in 0..=MAX_EXTENDS_DEPTH + 1 {
        let text = if i == MAX_EXTENDS_DEPTH + 1 {
            "version = 1\n".to_string()
        } else {
            format!("version = 1\nextends = [\"p{}\"]\n", i + 1)
        };
        std::fs::write(dir.join(format!("p{i}.toml")), text).unwrap();
    }
    let loader = Loader::new(vec![dir.0.clone()]);
    // p1 → … → p9 is 8 levels below p1: allowed.
    assert!(loader.load("p1", &vars()).is_ok());
    let e = loader.load("p0", &vars()).unwrap_err();
    assert!(matches!(e, PolicyError::TooDeep { limit: 8, .. }), "{e}");
    let p8 = dir.join("p8.toml");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:12: ", p8.display())),
        "{e}"
    );
}

#[test]
fn resolve_finds_presets_and_passes_paths() {
    let dir = temp_dir("resolve");
    std::fs::write(dir.join("x.toml"), "version = 1\n").unwrap();
    let loader = Loader::new(vec![dir.join("missing"), dir.0.clone()]);
    assert_eq!(loader.resolve("x").unwrap(), dir.join("x.toml"));
    assert_eq!(
        loader.resolve("./y.toml").unwrap(),
        PathBuf::from("./y.toml")
    );
    assert_eq!(loader.resolve("y.toml").unwrap(), PathBuf::from("y.toml"));
    let e = loader.resolve("nope").unwrap_err();
    assert!(
        matches!(&e, PolicyError::NotFound { name, searched } if name == "nope" && searched.len() == 2)
    );
    assert!(
        e.to_string().starts_with("policy `nope` not found in "),
        "{e}"
    );
    let e = loader.load("./nope.toml", &vars()).unwrap_err();
    assert!(matches!(e, PolicyError::Io { .. }), "{e}");
}

#[test]
fn shipped_presets_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let loader = Loader::new(vec![dir]);
    let base = loader.load("base", &vars()).unwrap();
    assert_eq!(base.network.mode, NetMode::None);
    assert!(base.filesystem.read.contains(&PathBuf::from("/usr")));
    assert!(base.filesystem.write.is_empty());
    assert!(base.env.passes("LC_ALL"));
    assert_eq!(base.env.set["GIT_TERMINAL_PROMPT"], "0");

    let p = loader.load("default", &vars()).unwrap();
    assert_eq!(p.sources.len(), 2);
    assert_eq!(p.filesystem.write, [PathBuf::from("/w/proj")]);
    assert!(p.filesystem.exec.contains(&PathBuf::from("/w/proj")));
    assert_eq!(p.filesystem.tmp, TmpMode::Private);
    assert_eq!(p.network, Network::default());
    let hidden = |s: &str| {
        p.filesystem
            .hide
            .iter()
            .any(|g| g.matches_or_below(Path::new(s)))
    };
    assert!(hidden("/w/proj/.env"));
    assert!(hidden("/w/proj/a/b/prod.env"));
    assert!(hidden("/w/proj/certs/server.key"));
    assert!(hidden("/home/u/.ssh/id_ed25519"));
    assert!(!hidden("/w/proj/src/main.rs"));
    assert!(!hidden("/w/proj/.envrc"));
}

mod rules;
