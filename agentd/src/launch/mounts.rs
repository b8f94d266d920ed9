//! Builds the run's filesystem view in its own mount namespace, then pivots into it.
//!
//! The view is a fresh tmpfs root holding only: the granted trees (bind mounts, each read-only
//! unless written to, `noexec` unless executable, always `nosuid,nodev`), a fresh `/proc` of the
//! run's pid namespace, a minimal `/dev`, private `/tmp` and `/var/tmp`, and nothing else.
//! Hidden paths are masked by a root-owned mode-000 file or directory mounted over them.
//!
//! Invariants:
//! - Bind sources are opened with the caller's filesystem identity, so a run never sees a tree
//!   the caller could not reach on the host (no escalation through our root privileges).
//! - Mount targets inside the view are opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`
//!   relative to the view's root: a symlink planted in a granted tree cannot redirect a mount.
//! - Runs in the run's init (pid 1 of a fresh pid namespace), single-threaded, as root.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use agentd_policy::Glob;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::spec::{Identity, Spec, ViewEntry};
use super::LaunchError;
use crate::sys::{creds, mount_api};

/// Most directory entries the hide-pattern walk visits before refusing to launch.
const HIDE_WALK_LIMIT: usize = 500_000;
const MASK_FILE: &str = ".agentd-mask";

/// Builds the view under `spec.staging` and makes it the root of the calling process.
pub fn build_view(spec: &Spec) -> Result<(), LaunchError> {
    let ctx = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| LaunchError::Mount(what, e)
    };
    // Nothing we mount propagates back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| LaunchError::Mount("make / a slave mount".into(), e.into()))?;
    let root = &spec.staging;
    tmpfs(root, "mode=0755,size=16m", MsFlags::empty()).map_err(ctx("tmpfs at the view's root"))?;
    let root_fd = fs::File::open(root).map_err(ctx("open the view's root"))?;
    let root_fd: OwnedFd = root_fd.into();

    for entry in &spec.view {
        match entry {
            ViewEntry::Bind { path, write, exec } => {
                bind_grant(&root_fd, root, path, *write, *exec, &spec.identity)?
            }
            ViewEntry::Tmpfs { path } => {
                let target = ensure_dir(&root_fd, root, path).map_err(ctx(&display(path)))?;
                tmpfs(&fd_path(&target), "mode=1777,size=50%", MsFlags::MS_NOEXEC)
                    .map_err(ctx(&display(path)))?;
            }
        }
    }
    mask_hidden(&root_fd, root, spec)?;
    proc_and_dev(&root_fd, root, spec)?;
    pivot(root)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// `/proc/self/fd/N`: a path the kernel resolves to exactly the object `fd` refers to.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn rel(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

fn tmpfs(target: &Path, data: &str, extra: MsFlags) -> io::Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | extra;
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(data)).map_err(io::Error::from)
}

/// Opens (creating as root-owned 0755 directories on the view's tmpfs where missing) the
/// directory `path` of the view.
fn ensure_dir(root_fd: &OwnedFd, root: &Path, path: &Path) -> io::Result<OwnedFd> {
    let r = rel(path);
    match mount_api::open_beneath(root_fd.as_fd(), &r) {
        Ok(fd) => Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = parent_dir(root_fd, root, path)?;
            match nix::sys::stat::mkdirat(&parent, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
            mount_api::open_beneath(root_fd.as_fd(), &r)
        }
        Err(e) => Err(e),
    }
}

/// The parent directory of `path` in the view (created as needed), opened without following
/// any symlink, and the last component: new entries are made relative to that descriptor, never
/// by a path string a caller could redirect with a symlink between check and creation.
fn parent_dir<'p>(
    root_fd: &OwnedFd,
    root: &Path,
    path: &'p Path,
) -> io::Result<(OwnedFd, &'p std::ffi::OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent = match path.parent().filter(|p| *p != Path::new("/")) {
        Some(p) => ensure_dir(root_fd, root, p)?,
        None => root_fd.try_clone()?,
    };
    Ok((parent, name))
}

/// Binds the host tree `path` at the same place in the view.
fn bind_grant(
    root_fd: &OwnedFd,
    root: &Path,
    path: &Path,
    write: bool,
    exec: bool,
    who: &Identity,
) -> Result<(), LaunchError> {
    let err = |e: io::Error| LaunchError::Mount(display(path), e);
    // Resolve the source exactly as the caller would: their uid, gid and groups.
    creds::assume_fs_identity(who.uid, who.gid, &who.groups).map_err(err)?;
    let meta = fs::symlink_metadata(path);
    let tree = match &meta {
        Ok(m) if m.file_type().is_symlink() => None,
        Ok(_) => Some(mount_api::clone_tree(path)),
        Err(_) => None,
    };
    creds::restore_root_fs_identity().map_err(err)?;
    let meta = match meta {
        Ok(m) => m,
        // A grant that does not exist on this host (e.g. /lib32) is simply absent.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LaunchError::Inaccessible(display(path), e)),
    };
    if meta.file_type().is_symlink() {
        // Merged-/usr systems: /bin -> usr/bin. Recreate the link; it resolves inside the view.
        let target = fs::read_link(path).map_err(err)?;
        let (parent, name) = parent_dir(root_fd, root, path).map_err(err)?;
        return match nix::unistd::symlinkat(&target, &parent, name) {
            Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
            Err(e) => Err(err(e.into())),
        };
    }
    let tree = match tree {
        Some(Ok(t)) => t,
        Some(Err(e)) => return Err(LaunchError::Inaccessible(display(path), e)),
        None => return Ok(()),
    };
    let mut attr = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    if !write {
        attr |= libc::MOUNT_ATTR_RDONLY;
    }
    if !exec {
        attr |= libc::MOUNT_ATTR_NOEXEC;
    }
    mount_api::set_attr_recursive(tree.as_fd(), attr).map_err(err)?;
    let target = if meta.is_dir() {
        ensure_dir(root_fd, root, path).map_err(err)?
    } else {
        ensure_file(root_fd, root, path).map_err(err)?
    };
    mount_api::attach(tree.as_fd(), target.as_fd()).map_err(err)
}

fn ensure_file(root_fd: &OwnedFd, root: &Path, path: &Path) -> io::Result<OwnedFd> {
    let r = rel(path);
    match mount_api::open_beneath(root_fd.as_fd(), &r) {
        Ok(fd) => Ok(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (parent, name) = parent_dir(root_fd, root, path)?;
            let flags = OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_WRONLY
                | OFlag::O_CLOEXEC;
            drop(nix::fcntl::openat(
                &parent,
                name,
                flags,
                Mode::from_bits_truncate(0o644),
            )?);
            mount_api::open_beneath(root_fd.as_fd(), &r)
        }
        Err(e) => Err(e),
    }
}

/// Masks every path of the view a hide pattern matches (deny wins over every grant).
fn mask_hidden(root_fd: &OwnedFd, root: &Path, spec: &Spec) -> Result<(), LaunchError> {
    let globs: Vec<Glob> = spec.hide.iter().filter_map(|p| Glob::new(p).ok()).collect();
    if globs.is_empty() {
        return Ok(());
    }
    let mask_file = root.join(MASK_FILE);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&mask_file)
        .map_err(|e| LaunchError::Mount("create the mask file".into(), e))?;
    let mut found = Vec::new();
    let mut budget = HIDE_WALK_LIMIT;
    for entry in &spec.view {
        if let ViewEntry::Bind { path, .. } = entry {
            // Patterns that start walking at the same directory (typically every
            // `${WORKSPACE}/**/…` one) share one walk: a big workspace is read once.
            let mut walks: Vec<(PathBuf, Vec<&Glob>)> = Vec::new();
            for g in &globs {
                let Some(start) = walk_start(path, g) else {
                    continue;
                };
                if g.is_literal() {
                    if fs::symlink_metadata(root.join(rel(&start))).is_ok() {
                        found.push(start);
                    }
                    continue;
                }
                match walks.iter_mut().find(|(s, _)| *s == start) {
                    Some((_, group)) => group.push(g),
                    None => walks.push((start, vec![g])),
                }
            }
            for (start, group) in walks {
                collect_matches(root, start, &group, &mut found, &mut budget)?;
            }
        }
    }
    found.sort();
    found.dedup();
    for path in &found {
        mask_one(root_fd, path, &mask_file)
            .map_err(|e| LaunchError::Mount(format!("hide {}", display(path)), e))?;
    }
    fs::remove_file(&mask_file).map_err(|e| LaunchError::Mount("remove the mask file".into(), e))
}

/// Where the walk for `glob` under the granted tree `grant` starts: the deeper of the grant and
/// the pattern's literal prefix; `None` when the pattern cannot match inside the grant.
fn walk_start(grant: &Path, glob: &Glob) -> Option<PathBuf> {
    let prefix = glob.literal_prefix();
    if prefix.starts_with(grant) {
        Some(prefix)
    } else if grant.starts_with(&prefix) {
        Some(grant.to_path_buf())
    } else {
        None
    }
}

/// Collects the paths below `start` that one of `globs` matches (a matching directory is
/// taken whole: it is masked, so nothing below it needs looking at).
fn collect_matches(
    root: &Path,
    start: PathBuf,
    globs: &[&Glob],
    found: &mut Vec<PathBuf>,
    budget: &mut usize,
) -> Result<(), LaunchError> {
    let matches = |p: &Path| globs.iter().any(|g| g.matches(p));
    let too_large = || {
        let names: Vec<&str> = globs.iter().map(|g| g.as_str()).collect();
        LaunchError::HideWalkTooLarge(HIDE_WALK_LIMIT, names.join("`, `"))
    };
    let mut stack = vec![start];
    while let Some(dir) = stack.pop() {
        if matches(&dir) {
            found.push(dir);
            continue;
        }
        let Ok(entries) = fs::read_dir(root.join(rel(&dir))) else {
            continue;
        };
        for e in entries.flatten() {
            *budget = budget.checked_sub(1).ok_or_else(too_large)?;
            let path = dir.join(e.file_name());
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) if matches(&path) => found.push(path),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Mounts a root-owned, mode-000 object over `path`: a read-only empty tmpfs for a directory,
/// the (mode-000) mask file for anything else. Symlinks are not followed (nothing is masked
/// through them; the file they point to is masked under its own name if a pattern names it).
fn mask_one(root_fd: &OwnedFd, path: &Path, mask_file: &Path) -> io::Result<()> {
    let target = match mount_api::open_beneath(root_fd.as_fd(), &rel(path)) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOENT)) => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let is_dir = fs::metadata(fd_path(&target))?.is_dir();
    let target_path = fd_path(&target);
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if is_dir {
        mount(
            Some("tmpfs"),
            &target_path,
            Some("tmpfs"),
            ro,
            Some("mode=000,size=4k"),
        )?;
    } else {
        mount(
            Some(mask_file),
            &target_path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        let target = mount_api::open_beneath(root_fd.as_fd(), &rel(path))?;
        mount(
            None::<&str>,
            &fd_path(&target),
            None::<&str>,
            ro | MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// A fresh /proc of the run's pid namespace and a minimal /dev.
fn proc_and_dev(root_fd: &OwnedFd, root: &Path, spec: &Spec) -> Result<(), LaunchError> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| LaunchError::Mount(what, e)
    };
    let proc_dir = ensure_dir(root_fd, root, Path::new("/proc")).map_err(err("/proc"))?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("proc"),
        &fd_path(&proc_dir),
        Some("proc"),
        nosuid,
        None::<&str>,
    )
    .map_err(|e| LaunchError::Mount("/proc".into(), e.into()))?;

    let dev = ensure_dir(root_fd, root, Path::new("/dev")).map_err(err("/dev"))?;
    tmpfs(&fd_path(&dev), "mode=0755,size=64k", MsFlags::MS_NOEXEC).map_err(err("/dev"))?;
    let devdir = root.join("dev");
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = devdir.join(name);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&target)
            .map_err(err(name))?;
        let host = Path::new("/dev").join(name);
        mount(
            Some(&host),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| LaunchError::Mount(display(&host), e.into()))?;
    }
    let pts = devdir.join("pts");
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&pts)
        .map_err(err("/dev/pts"))?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|e| LaunchError::Mount("/dev/pts".into(), e.into()))?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, devdir.join(link)).map_err(err(link))?;
    }
    if spec
        .view
        .iter()
        .any(|e| matches!(e, ViewEntry::Tmpfs { .. }))
    {
        let shm = devdir.join("shm");
        fs::DirBuilder::new()
            .mode(0o1777)
            .create(&shm)
            .map_err(err("/dev/shm"))?;
        tmpfs(&shm, "mode=1777,size=50%", MsFlags::MS_NOEXEC).map_err(err("/dev/shm"))?;
    }
    // The view's root itself: not writable by anyone but root, listable by all.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).map_err(err("view root"))?;
    Ok(())
}

/// Makes `root` the process's root and detaches the host's.
fn pivot(root: &Path) -> Result<(), LaunchError> {
    let err = |what: &'static str| move |e: nix::Error| LaunchError::Mount(what.into(), e.into());
    nix::unistd::chdir(root).map_err(err("chdir to the view"))?;
    nix::unistd::pivot_root(".", ".").map_err(err("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(err("detach the host root"))?;
    nix::unistd::chdir("/").map_err(err("chdir /"))?;
    Ok(())
}
