//! FIFO opens wait for the other end, so the monitor carries them out on worker threads. A
//! worker may wait for ever: nobody opens the other end, and the agent that asked may be gone
//! (its wait is only killable). The run's FIFO watch releases such workers: every half second
//! it checks each waiting call with `ID_VALID`, and for a call that is no longer pending it
//! opens the other end itself (non-blocking, closed at once), which completes the worker's
//! open; the worker's answer then fails harmlessly and the thread ends.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sys::{creds, mount_api, seccomp_notify};

/// How often waiting FIFO opens are checked.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A waiting open: its notification id, the FIFO (`O_PATH`), the open's flags.
type Waiting = (u64, OwnedFd, i32);

#[derive(Default)]
pub(crate) struct FifoWatch {
    /// The waiting opens, and whether a watcher thread is alive.
    state: Mutex<(Vec<Waiting>, bool)>,
}

impl FifoWatch {
    /// Watches the call `id`, an open of `fifo` with `flags`, until [`FifoWatch::done`].
    pub fn watch(self: &Arc<Self>, listener: &Arc<OwnedFd>, id: u64, fifo: OwnedFd, flags: i32) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.push((id, fifo, flags));
        if st.1 {
            return;
        }
        let watch = self.clone();
        let listener = listener.clone();
        let started = std::thread::Builder::new()
            .name("fifo-watch".into())
            .spawn(move || watch.run(&listener));
        st.1 = started.is_ok();
    }

    /// The open of call `id` returned.
    pub fn done(&self, id: u64) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0.retain(|(i, _, _)| *i != id);
    }

    fn run(&self, listener: &OwnedFd) {
        // The other end is opened as root's filesystem identity: the run's user may lack the
        // permission for it, and nothing here is handed to the agent.
        let root = creds::restore_root_fs_identity().is_ok();
        loop {
            std::thread::sleep(WATCH_EVERY);
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.0.is_empty() {
                st.1 = false;
                return;
            }
            st.0.retain(|(id, fifo, flags)| {
                if seccomp_notify::id_valid(listener.as_fd(), *id) || !root {
                    return true;
                }
                let other = if flags & libc::O_ACCMODE == libc::O_RDONLY {
                    libc::O_WRONLY
                } else {
                    libc::O_RDONLY
                };
                let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
                drop(mount_api::reopen_path(
                    &path,
                    other | libc::O_NONBLOCK | libc::O_NOCTTY,
                ));
                false
            });
        }
    }
}
