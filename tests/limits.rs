//! Limits and deadlines: what a hostile client of the `HTTP_LISTEN` responder, an output that
//! nobody reads, or a huge domains.txt line can make a run hold, and that none of them keeps
//! it past `RUN_TIMEOUT`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Env, Pebble, PebbleOptions, Run, check_live_set, script};

/// A `/proc/<pid>/status` field in its unit (kB for memory).
fn status_field(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
}

/// Waits for `child` at most `limit`; kills it and panics when it runs longer.
fn wait_at_most(mut child: Child, limit: Duration, what: &str) -> (Run, Duration) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {limit:?}; killed{:?}",
                Run {
                    args: vec![],
                    output
                }
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        args: vec![what.into()],
        output,
    };
    (run, elapsed)
}

/// The first line of the answer to `request`.
fn ask(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or("").to_string()
}

#[test]
fn a_hostile_client_of_the_responder_gets_bounded_memory_threads_and_time() {
    let pebble = Pebble::start_with(PebbleOptions {
        web_server: false,
        ..Default::default()
    });
    let listen = SocketAddr::from((pebble.ip, pebble.http_port));
    let env = Env::new(&pebble, "");
    // deploy_challenge holds the run, token served, until the test has attacked.
    let (waiting, go) = (env.path().join("waiting"), env.path().join("go"));
    let hook = env.path().join("hook.sh");
    script(
        &hook,
        &format!(
            "if [ \"$1\" = deploy_challenge ]; then\n touch '{}'\n \
             while [ ! -e '{}' ]; do sleep 0.05; done\nfi\nexit 0",
            waiting.display(),
            go.display()
        ),
    );
    env.write_config(&format!(
        "HTTP_LISTEN={listen}\nWELLKNOWN=/nonexistent\nHOOK={}\n",
        hook.display()
    ));
    env.domains("served.example\n");
    let mut child = env
        .command(&["--cron", "--accept-terms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    common::wait_for_file(&waiting, &mut child);
    let before_kb = status_field(pid, "VmRSS");

    // 100 MiB without a newline.
    let mut hostile = TcpStream::connect(listen).unwrap();
    hostile
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut accepted = 0usize;
    while accepted < 100 << 20 {
        match hostile.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => accepted += n,
        }
    }
    // Many connections that never finish their request.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(listen).unwrap();
            s.write_all(b"GET /.well-known/acme-challenge/").unwrap();
            s
        })
        .collect();
    // Connections are taken in turn: one answered after them means all were taken.
    assert_eq!(
        ask(listen, "GET /nothing HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    let peak_kb = status_field(pid, "VmHWM");
    // A connection closed to make room ends its thread a moment later, once it sees its socket
    // shut: the count is read until it settles (bounded), not at one instant.
    let settled = Instant::now() + Duration::from_secs(10);
    let mut threads = status_field(pid, "Threads");
    while threads >= 64 + 16 && Instant::now() < settled {
        thread::sleep(Duration::from_millis(20));
        threads = status_field(pid, "Threads");
    }
    assert!(
        accepted < 16 << 20,
        "the responder took {accepted} bytes of one request line"
    );
    assert!(
        peak_kb < before_kb + 32 * 1024,
        "the run grew from {before_kb} kB to a peak of {peak_kb} kB"
    );
    assert!(
        threads < 64 + 16,
        "{threads} threads for {} idle connections",
        idle.len()
    );

    // The CA's validation gets through while the idle connections stay open.
    fs::write(&go, "").unwrap();
    let (run, _) = wait_at_most(child, Duration::from_secs(120), "--cron");
    run.expect(0);
    drop(idle);
    check_live_set(
        &env.cert_dir("served.example"),
        &["served.example"],
        &pebble.root_der(),
    );
}

/// A pipe of one page that the test never reads: its read end, kept open, and its write end.
fn unread_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors, which become owned here; fcntl on the write end.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096);
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

#[test]
fn run_timeout_holds_when_nobody_reads_the_output() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    // The hook's output, which the run logs line by line, is far more than the pipe holds, so
    // the run blocks in a write once the deadline is set, however quick the machine is.
    let hook = env.path().join("chatty-hook");
    common::script(
        &hook,
        "[ \"$1\" = deploy_challenge ] && seq 1 20000 | sed 's/^/hook output line /'\nexit 0",
    );
    env.write_config(&format!("RUN_TIMEOUT=2\nHOOK={}\n", hook.display()));
    env.domains("a.stuck.example\nb.stuck.example\nc.stuck.example\n");
    let (_read_end, write_end) = unread_pipe();
    let child = env
        .command(&["--cron", "--accept-terms", "--verbose"])
        .stdout(Stdio::from(write_end.try_clone().unwrap()))
        .stderr(Stdio::from(write_end))
        .spawn()
        .unwrap();
    // RUN_TIMEOUT, GRACE (5 s), and a margin for a loaded machine.
    let (run, took) = wait_at_most(child, Duration::from_secs(2 + 5 + 10), "--cron --verbose");
    assert_eq!(run.code(), 75, "{run:?}");
    assert!(took >= Duration::from_secs(2), "ended after {took:?}");
    // The lock went with the run: the next one, read as usual, does the work.
    env.write_config("");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    for name in ["a.stuck.example", "b.stuck.example", "c.stuck.example"] {
        check_live_set(&env.cert_dir(name), &[name], &pebble.root_der());
    }
}

#[test]
fn a_line_of_700k_names_is_refused_at_once_naming_the_line() {
    let dir = common::TempDir::new("no-ca");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        &dir.path().join("ca.pem"),
        dir.path(),
        "RUN_TIMEOUT=60\n",
    );
    let line: String = (0..700_000).map(|i| format!("n{i}.example ")).collect();
    env.domains(&format!("ok.example\n{line}\n"));
    let domains = env.path().join("domains.txt");
    // Generous: the parse is linear and stops at the bound; before, it took hours.
    for (args, code) in [
        (&["--cron", "--accept-terms"][..], 78),
        (&["--check"][..], 3),
    ] {
        let child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (run, _) = wait_at_most(child, Duration::from_secs(60), &args.join(" "));
        run.expect(code);
        // --check says it on stdout, as UNKNOWN; --cron on stderr.
        assert!(
            (run.stdout() + &run.stderr()).contains(&format!(
                "{}:2: more than 1000 names for one certificate",
                domains.display()
            )),
            "{run:?}"
        );
    }
}

#[test]
fn check_ends_within_run_timeout_when_a_read_hangs() {
    let dir = common::TempDir::new("no-ca");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        &dir.path().join("ca.pem"),
        dir.path(),
        "RUN_TIMEOUT=1\n",
    );
    env.domains("stuck.example\n");
    // A certificate file whose read never ends (a FIFO nobody writes; a hung network mount).
    let cert_dir = env.cert_dir("stuck.example");
    fs::create_dir_all(&cert_dir).unwrap();
    let fifo = std::ffi::CString::new(cert_dir.join("cert.pem").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let child = env
        .command(&["--check"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // RUN_TIMEOUT, GRACE (5 s), and a margin for a loaded machine.
    let (run, _) = wait_at_most(child, Duration::from_secs(1 + 5 + 10), "--check");
    // UNKNOWN when the deadline ended it; a file refused for its type is CRITICAL.
    assert!([2, 3].contains(&run.code()), "{run:?}");
}

/// The TSIG key file is read while the config loads, before `RUN_TIMEOUT` can hold: a FIFO
/// there (or a file another user can change) is refused at once, not waited on.
#[test]
fn a_tsig_key_file_that_never_ends_is_refused_not_waited_on() {
    let dir = common::TempDir::new("no-ca");
    let key = dir.path().join("tsig.key");
    let fifo = std::ffi::CString::new(key.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        &dir.path().join("ca.pem"),
        dir.path(),
        &format!(
            "RUN_TIMEOUT=1\nCHALLENGETYPE=dns-01\nDNS_UPDATE_SERVER=127.0.0.1:9\n\
             DNS_UPDATE_KEY_FILE={}\n",
            key.display()
        ),
    );
    env.domains("stuck.example\n");
    for args in [&["--cron"][..], &["--check"][..]] {
        let child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (run, _) = wait_at_most(child, Duration::from_secs(10), &args.join(" "));
        assert!([78, 3].contains(&run.code()), "{run:?}");
        let said = run.stdout() + &run.stderr();
        assert!(
            said.contains("DNS_UPDATE_KEY_FILE") && said.contains("not a regular file"),
            "{run:?}"
        );
    }
}
