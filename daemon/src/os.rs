//! The daemon's only `unsafe`: thin wrappers over the libc calls std does not offer.
//!
//! Owns: adopting the descriptors systemd passes (socket activation), umask around a UNIX-socket
//! bind, dropping root privileges (`-u`), the open-files and
//! core limits, `mlockall` (`-k`), detaching (`-d`), resource usage for `stats` (request
//! latency's clock is quanta's, in `latency`), and the shared mapping and memfd a warm restart
//! keeps the cache's memory in (`restart`). Each call is plain FFI with no pointers kept past
//! the call, except the mapping, which lives as long as the process. Must not touch: sockets'
//! data, threads.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor systemd passed (a listening socket, or the cache's memory
/// from its file descriptor store). Call once per descriptor that `sd_notify::listen_fds`
/// yields: `listener` adopts the sockets, `restart` the one named `ferrocached-memory`.
pub fn adopt_inherited_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` comes from sd_notify::listen_fds, which yields each descriptor systemd
    // passed to this very process (LISTEN_PID checked); the two callers split them by name, so
    // each is adopted once; nothing else in the process opened, owns or closes descriptors
    // 3..3+LISTEN_FDS, so ownership is unique.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Maps the first `len` bytes of the file `fd` shared and writable, for the rest of the
/// process's life (the memory of a restartable cache: what is written there stays in the file).
/// The file must be at least `len` bytes long, and no one else may write it meanwhile (the
/// caller holds a lock on it).
pub fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<&'static mut [u8]> {
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
    }
    // SAFETY: mmap with a null hint creates a new mapping and touches no existing memory; the
    // descriptor is valid for the call (borrowed), and the mapping stays valid after it closes.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `address` starts a fresh, readable and writable mapping of `len` bytes that no
    // other reference points into; it is never unmapped, so it lives for 'static; the file
    // holds `len` bytes (the caller sized it), so no access faults. Only this one slice is ever
    // made from it. Writes by another process would be outside Rust's view, which is why the
    // file is locked against a second ferrocached and is documented as the daemon's alone.
    Ok(unsafe { std::slice::from_raw_parts_mut(address.cast::<u8>(), len) })
}

/// A new anonymous memory file (`memfd_create`), close-on-exec.
pub fn memfd(name: &str) -> io::Result<OwnedFd> {
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "memfd name contains NUL"))?;
    // SAFETY: memfd_create reads the NUL-terminated name we own and returns a new descriptor.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created by this call and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `f` with the process umask set so that new files get `mode` (no other thread may be
/// creating files meanwhile: call before the worker threads start).
pub fn with_umask<T>(mode: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask swaps the process's file-creation mask and cannot fail.
    let old = unsafe { libc::umask((!mode & 0o777) as libc::mode_t) };
    let result = f();
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    result
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Becomes `user` (its uid, primary gid, no supplementary groups).
pub fn drop_privileges(user: &str) -> io::Result<()> {
    let name = CString::new(user)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name contains NUL"))?;
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwnam_r fills it and points its
    // strings into `buffer`, which outlives every use below (only the numeric ids are read).
    let (uid, gid) = unsafe {
        let mut passwd: libc::passwd = std::mem::zeroed();
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut passwd,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        );
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if found.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("can't find the user {user} to switch to"),
            ));
        }
        (passwd.pw_uid, passwd.pw_gid)
    };
    // SAFETY: plain syscalls on integers; order matters (groups and gid while still root).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the soft limit on open files towards `wanted` (as far as the hard limit allows, or
/// beyond it when root). Returns the soft limit in force afterwards.
pub fn raise_open_files_limit(wanted: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    let mut raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max.max(wanted),
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        raised.rlim_cur = wanted.min(limit.rlim_max);
        raised.rlim_max = limit.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Ok(limit.rlim_cur);
        }
    }
    Ok(raised.rlim_cur)
}

/// `-r`: lets the process dump a core of any size.
pub fn enable_coredumps() -> io::Result<()> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &unlimited) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `-k`: keeps every page of the process in RAM.
pub fn lock_memory() -> io::Result<()> {
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `-d`: detaches from the terminal into the background. Must run before any thread starts,
/// since only the calling thread survives the fork.
pub fn daemonize(keep_stderr: bool) -> io::Result<()> {
    // SAFETY: daemon() forks and exits the parent; called while the process is single-threaded.
    if unsafe { libc::daemon(0, i32::from(keep_stderr)) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// User and system CPU time of the process, as (seconds, microseconds) pairs.
pub fn cpu_times() -> ((i64, i64), (i64, i64)) {
    // SAFETY: a zeroed rusage is a valid out-parameter for getrusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    (
        (usage.ru_utime.tv_sec, usage.ru_utime.tv_usec),
        (usage.ru_stime.tv_sec, usage.ru_stime.tv_usec),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_files_limit_is_raised_or_reported() {
        let limit = raise_open_files_limit(256).unwrap();
        assert!(limit >= 256);
    }

    #[test]
    fn cpu_times_are_read() {
        // CPU time is accounted in scheduler ticks: spin until one has been charged (a fixed
        // number of iterations may finish inside a tick and read 0), within a wall-clock bound.
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        let used = loop {
            for i in 0..1_000_000u64 {
                spin = std::hint::black_box(spin.wrapping_add(i * i));
            }
            let ((user, user_us), (system, system_us)) = cpu_times();
            if user > 0 || user_us > 0 || system > 0 || system_us > 0 {
                break true;
            }
            if started.elapsed() > std::time::Duration::from_secs(5) {
                break false;
            }
        };
        assert!(
            used,
            "getrusage reported no CPU time after 5 s of spinning ({spin})"
        );
    }

    #[test]
    fn a_shared_mapping_writes_through_to_its_file() {
        let file = std::fs::File::from(memfd("ferrocache-test").unwrap());
        file.set_len(8192).unwrap();
        let region = map_shared(std::os::fd::AsFd::as_fd(&file), 8192).unwrap();
        region[8191] = 7;
        let again = map_shared(std::os::fd::AsFd::as_fd(&file), 8192).unwrap();
        assert_eq!(again[8191], 7, "two mappings of one file share its bytes");
        assert!(map_shared(std::os::fd::AsFd::as_fd(&file), 0).is_err());
    }

    #[test]
    fn unknown_user_is_an_error() {
        let error = drop_privileges("no-such-user-ferrocache").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn umask_is_restored() {
        let dir = std::env::temp_dir().join(format!("ferrocache-umask-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        with_umask(0o700, || std::fs::write(&dir, b"x")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        std::fs::remove_file(&dir).unwrap();
        // Files are created 0666 & mask, so 0700 leaves 0600.
        assert_eq!(mode, 0o600);
    }
}
