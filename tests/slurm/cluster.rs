//! A real single-node Slurm cluster on this machine, for tests: Debian's `munge`,
//! `slurmctld` and `slurmd` (installed with apt-get when missing), run in the foreground
//! as children of the test, every file they write (key, sockets, state, spool, pid files,
//! logs, job output) under one temporary directory. Dropping the `Cluster` (also when the
//! test panics) cancels its jobs and stops every daemon by pid.
//!
//! No cgroups and no GPUs: processes are tracked by `proctrack/linuxproc`, tasks are not
//! confined (`task/none`), and there is no accounting database, so job states come from
//! `squeue`, which keeps finished jobs for `MinJobAge` seconds.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Debian's packages of a Slurm controller, a compute node, the client commands and munge.
const PACKAGES: &[&str] = &["munge", "slurmctld", "slurmd", "slurm-client"];
/// What the cluster runs; all must be found once the packages are installed.
const PROGRAMS: &[&str] = &[
    "munged",
    "munge",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scancel",
];
/// The node's name in slurm.conf (slurmd is started with `-N`, so it is not the hostname).
const NODE: &str = "rift-node";
const PARTITION: &str = "rift";

/// States a job never leaves (squeue's long names).
const FINAL_STATES: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
];

/// Paths where the packaged daemons keep state by default: the cluster must not touch
/// them (`outside_state` lists what is there, before and after).
const DEFAULT_STATE_PATHS: &[&str] = &[
    "/run/munge",
    "/var/lib/munge",
    "/var/log/munge",
    "/var/lib/slurm",
    "/var/spool/slurmd",
    "/var/spool/slurmctld",
    "/var/log/slurm",
    "/run/slurmctld.pid",
    "/run/slurmd.pid",
    "/etc/slurm",
];

/// Installs the packages when a program is missing (CI runs as root on a machine that
/// reaches Debian's mirrors). Panics, naming what to do, when it cannot: a test that
/// needs the cluster never skips.
pub fn ensure_installed() {
    // Tests of one binary run on threads: one installs, the others wait for it.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if PROGRAMS.iter().all(|p| program(p).is_some()) {
        return;
    }
    assert!(
        is_root(),
        "the Slurm test installs {} with apt-get, which needs root",
        PACKAGES.join(" ")
    );
    // Wait for another apt (unattended upgrades) instead of failing on its lock.
    let apt = |args: &[&str]| {
        let out = run(Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        assert!(
            out.status.success(),
            "apt-get {} failed ({}); the Slurm test needs the packages {}:\n{}\n{}",
            args.join(" "),
            out.status,
            PACKAGES.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    apt(&["update"]);
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(PACKAGES);
    apt(&install);
    for p in PROGRAMS {
        assert!(
            program(p).is_some(),
            "{p} is still missing after installing {PACKAGES:?}"
        );
    }
}

fn is_root() -> bool {
    let id = run(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// `name` on PATH or in the sbin directories (a non-login root shell may lack them).
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Two distinct free TCP ports on localhost (both held while the second is picked).
fn free_ports() -> (u16, u16) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Every file and directory under the default state paths, with its modification time.
pub fn outside_state() -> BTreeMap<PathBuf, Option<std::time::SystemTime>> {
    fn walk(p: &Path, into: &mut BTreeMap<PathBuf, Option<std::time::SystemTime>>) {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return;
        };
        into.insert(p.to_path_buf(), meta.modified().ok());
        if meta.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(&e.path(), into);
            }
        }
    }
    let mut all = BTreeMap::new();
    for p in DEFAULT_STATE_PATHS {
        walk(Path::new(p), &mut all);
    }
    all
}

/// Pids of the processes whose environment names `conf` as SLURM_CONF: the daemons, the
/// job steps slurmd forks (they outlive it if not stopped) and the jobs themselves.
pub fn processes_of(conf: &Path) -> Vec<u32> {
    let needle = format!("SLURM_CONF={}", conf.display());
    let me = std::process::id();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if pid != me && env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// TERM, up to `grace` to exit, then KILL.
fn stop_pid(pid: u32, grace: Duration) {
    signal(pid, "-TERM");
    let start = Instant::now();
    while alive(pid) && start.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        signal(pid, "-KILL");
    }
}

pub struct Cluster {
    /// Daemons in the order they started (munged, slurmctld, slurmd).
    daemons: Vec<(&'static str, Child)>,
    conf: PathBuf,
    /// Dropped after `Drop::drop` stopped everything that wrote into it.
    tmp: tempfile::TempDir,
}

impl Cluster {
    /// Installs the packages if needed, then starts munged, slurmctld and slurmd and waits
    /// until the node is idle.
    pub fn start() -> Cluster {
        ensure_installed();
        // slurm.conf names root as SlurmUser, and slurmd starts jobs as their users.
        assert!(
            is_root(),
            "the Slurm test runs slurmctld and slurmd, which needs root"
        );
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let conf = dir.join("slurm.conf");
        let mut cluster = Cluster {
            daemons: Vec::new(),
            conf: conf.clone(),
            tmp,
        };
        for d in ["munge", "state", "spool", "log"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        let socket = dir.join("munge/munge.socket");
        cluster.start_munged(&socket);
        let (ctld_port, slurmd_port) = free_ports();
        std::fs::write(&conf, slurm_conf(&dir, &socket, ctld_port, slurmd_port)).unwrap();
        // -i: no state files to recover from in a fresh StateSaveLocation is not an error.
        cluster.spawn("slurmctld", &["-D", "-i"]);
        cluster.spawn("slurmd", &["-D", "-N", NODE]);
        cluster.wait_until(Duration::from_secs(60), "the node to be idle", |c| {
            let out = c
                .command("sinfo")
                .args(["-h", "-n", NODE, "-o", "%T"])
                .output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        cluster
    }

    /// The temporary directory holding everything (job output lands here too).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn conf(&self) -> &Path {
        &self.conf
    }

    fn start_munged(&mut self, socket: &Path) {
        let dir = self.dir().join("munge");
        let key = dir.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .unwrap();
        std::fs::write(&key, &bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let arg = |flag: &str, p: &Path| format!("--{flag}={}", p.display());
        // --force: munged refuses a socket directory under the world-writable /tmp.
        let args = [
            "-F".to_string(),
            "--force".to_string(),
            arg("socket", socket),
            arg("key-file", &key),
            arg("pid-file", &dir.join("munged.pid")),
            arg("log-file", &dir.join("munged.log")),
            arg("seed-file", &dir.join("munged.seed")),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn("munged", &args);
        let socket = socket.to_path_buf();
        self.wait_until(Duration::from_secs(30), "munged to answer", move |_| {
            let encode = Command::new(program("munge").unwrap())
                .args(["-n", "-S"])
                .arg(&socket)
                .output();
            encode.is_ok_and(|o| o.status.success())
        });
    }

    /// Starts `name` in the foreground with the cluster's SLURM_CONF, its output in
    /// `DIR/log/NAME.out`.
    fn spawn(&mut self, name: &'static str, args: &[&str]) {
        let out = File::create(self.dir().join("log").join(format!("{name}.out"))).unwrap();
        let child = Command::new(program(name).unwrap())
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// A Slurm client command (`sbatch`, `squeue`, …) or script talking to this cluster,
    /// run from its directory.
    pub fn command(&self, program_or_path: &str) -> Command {
        let path = program(program_or_path).unwrap_or_else(|| program_or_path.into());
        let mut cmd = Command::new(path);
        cmd.env("SLURM_CONF", &self.conf).current_dir(self.dir());
        cmd
    }

    /// Polls `ready` until it holds; panics past `limit` (or when a daemon died) with the
    /// daemons' output and the jobs' logs.
    fn wait_until(&mut self, limit: Duration, what: &str, ready: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        loop {
            if ready(self) {
                return;
            }
            let died = self
                .daemons
                .iter_mut()
                .find_map(|(name, c)| c.try_wait().ok().flatten().map(|s| (*name, s)));
            if let Some((name, status)) = died {
                panic!(
                    "{name} exited ({status}) waiting for {what}\n{}",
                    self.logs()
                );
            }
            if start.elapsed() > limit {
                panic!("no {what} after {limit:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// State of every job or array task of `jobs` (ids as sbatch prints them), one entry
    /// per array task (`12_0`, `12_1`, …).
    pub fn states(&self, jobs: &[&str]) -> BTreeMap<String, String> {
        let ids = jobs.join(",");
        let squeue = || {
            let args = ["-h", "-r", "--states=all", "-o", "%i %T", "-j", &ids];
            run(self.command("squeue").args(args))
        };
        // A controller busy on two loaded cores may time a request out: ask again.
        let mut out = squeue();
        for _ in 0..5 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            out = squeue();
        }
        assert!(
            out.status.success(),
            "squeue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, state)| (id.to_string(), state.trim().to_string()))
            .collect()
    }

    /// Waits until every job of `jobs` is in a final state (panics past `limit`) and
    /// returns the states.
    pub fn wait_for_jobs(&mut self, jobs: &[&str], limit: Duration) -> BTreeMap<String, String> {
        let what = format!("end of jobs {jobs:?}");
        self.wait_until(limit, &what, |c| {
            let states = c.states(jobs);
            !states.is_empty() && states.values().all(|s| FINAL_STATES.contains(&s.as_str()))
        });
        self.states(jobs)
    }

    /// Waits until the job (or array task, `12_1`) `job` is in `state`.
    pub fn wait_for_state(&mut self, job: &str, state: &str, limit: Duration) {
        let what = format!("job {job} {state}");
        self.wait_until(limit, &what, |c| {
            c.states(&[job]).get(job).map(String::as_str) == Some(state)
        });
    }

    /// The daemons' output and every job log, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        let mut files: Vec<PathBuf> = ["log", "."]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(self.dir().join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "out" || e == "log"))
            .collect();
        files.push(self.dir().join("munge/munged.log"));
        for f in files {
            let body = std::fs::read_to_string(&f).unwrap_or_default();
            let tail: Vec<&str> = body.lines().rev().take(40).collect();
            text += &format!("==== {} (last lines)\n", f.display());
            for l in tail.iter().rev() {
                text += l;
                text.push('\n');
            }
        }
        text
    }

    /// Cancels every job, stops slurmd, slurmctld and munged by pid (TERM, then KILL after
    /// a grace period), then any process still carrying this cluster's SLURM_CONF (a job
    /// step slurmd left). Safe to call twice.
    pub fn stop(&mut self) {
        if self.daemons.is_empty() {
            return;
        }
        // While slurmd still runs, so that it ends the jobs' steps itself.
        let _ = self
            .command("scancel")
            .args(["--partition", PARTITION])
            .output();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            let running = self
                .command("squeue")
                .args(["-h", "-o", "%i"])
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default();
            if running.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        while let Some((_, mut child)) = self.daemons.pop() {
            stop_pid(child.id(), Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in processes_of(&self.conf) {
            stop_pid(pid, Duration::from_secs(5));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// slurm.conf of a one-node cluster whose every path lies under `dir`: munge at `socket`,
/// the controller on `ctld_port` and slurmd on `slurmd_port` of 127.0.0.1, the node's
/// CPUs as this machine's, no GRES, no cgroups, no accounting.
fn slurm_conf(dir: &Path, socket: &Path, ctld_port: u16, slurmd_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // slurmctld runs only where SlurmctldHost is this machine's short hostname.
    let host = host.trim().split('.').next().unwrap().to_string();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let d = dir.display();
    format!(
        "ClusterName=rifttest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MinJobAge=3600
ReturnToService=2
MailProg=/bin/true
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
",
        socket = socket.display()
    )
}
