//! Real faults for the fault tests: file systems that fill up (a small tmpfs) or turn
//! read-only under the gateway (ext4 with `errors=remount-ro` on a loop device whose backing
//! store runs out: the kernel remounts it read-only, as on a failing disk; a plain
//! `mount -o remount,ro` is refused while SQLite holds the store open for writing), a
//! misbehaving next hop (`tests/fixtures/next_hop.py`), and mail sent with lettre. Mounting
//! needs root: [`root_or_skip`] says so and the test returns.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

/// True when running as root; otherwise prints why the test is skipped.
pub fn root_or_skip(test: &str) -> bool {
    let out = Command::new("id").arg("-u").output().expect("id");
    let root = String::from_utf8_lossy(&out.stdout).trim() == "0";
    if !root {
        eprintln!("SKIPPED {test}: needs root to mount file systems (CI runs as root)");
    }
    root
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tmpfs of `size` mounted on a directory; unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                path.to_str().unwrap(),
            ],
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fill the file system holding `dir` until it has no space left; the ballast file.
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("ballast.fill");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0x5a_u8; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Small writes to take the last partial blocks too.
    while file.write(&[0x5a]).is_ok_and(|n| n > 0) {}
    let _ = file.sync_all();
    path
}

/// An ext4 file system mounted on a directory, whose loop device's backing file lives on a
/// small tmpfs: [`Ext4::break_read_only`] exhausts that tmpfs, so the next write fails and
/// the kernel remounts the file system read-only; [`Ext4::restore`] (with nothing using
/// it) checks and remounts it.
pub struct Ext4 {
    pub path: PathBuf,
    outer: PathBuf,
    image: PathBuf,
}

impl Ext4 {
    pub fn mount(path: &Path) -> Ext4 {
        let outer = path.with_extension("backing");
        std::fs::create_dir_all(&outer).unwrap();
        std::fs::create_dir_all(path).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "size=24m",
                "tmpfs",
                outer.to_str().unwrap(),
            ],
        );
        let image = outer.join("fs.img");
        run("truncate", &["-s", "64M", image.to_str().unwrap()]);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                image.to_str().unwrap(),
            ],
        );
        let ext4 = Ext4 {
            path: path.to_path_buf(),
            outer,
            image,
        };
        ext4.mount_image();
        ext4
    }

    fn mount_image(&self) {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap(),
                self.path.to_str().unwrap(),
            ],
        );
    }

    /// Whether the kernel has made the file system read-only.
    pub fn is_read_only(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let target = self.path.to_str().unwrap();
        mounts.lines().any(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            fields.get(1) == Some(&target)
                && fields
                    .get(3)
                    .is_some_and(|o| o.split(',').any(|o| o == "ro" || o == "emergency_ro"))
        })
    }

    /// Exhaust the backing store and write until the kernel turns the file system
    /// read-only.
    pub fn break_read_only(&self) {
        fill(&self.outer);
        use std::io::Write;
        let went = wait_for(Duration::from_secs(10), || {
            let trigger = self.path.join(format!("trigger-{}", free_port()));
            if let Ok(mut f) = std::fs::File::create(&trigger) {
                let _ = f.write_all(&vec![1u8; 1 << 20]);
                let _ = f.sync_all();
            }
            self.is_read_only().then_some(())
        });
        assert!(
            went.is_some(),
            "{} did not turn read-only",
            self.path.display()
        );
    }

    /// Put the file system back (nothing may have it open): unmount, give the backing
    /// store room, check, mount again.
    pub fn restore(&self) {
        let _ = std::fs::remove_file(self.outer.join("ballast.fill"));
        run("umount", &[self.path.to_str().unwrap()]);
        let status = Command::new("e2fsck")
            .args(["-fy", self.image.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.code().is_some_and(|c| c <= 2),
            "e2fsck could not repair the image: {status:?}"
        );
        self.mount_image();
        for entry in std::fs::read_dir(&self.path).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("trigger-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = Command::new("umount").arg("-l").arg(&self.outer).status();
    }
}

/// The fake next hop (`tests/fixtures/next_hop.py`): accepted messages land in `dir`.
pub struct NextHop {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl NextHop {
    /// Start on `port` with a `mode` ("accept", "reset", "421") for the first `count`
    /// sessions; messages are written to `dir`.
    pub fn start(port: u16, dir: &Path, mode: &str, count: u32) -> NextHop {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/next_hop.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([
                &port.to_string(),
                dir.to_str().unwrap(),
                mode,
                &count.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        NextHop {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<String> {
        messages_in(&self.dir)
    }

    /// What the next hop logged (faults injected, messages accepted).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.parent().unwrap().join("next_hop.log")).unwrap_or_default()
    }
}

impl Drop for NextHop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The complete `.eml` files in `dir`.
pub fn messages_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned())
        .collect()
}

/// The tokens (`fault-token-N`) of the messages in `messages`, sorted.
pub fn tokens(messages: &[String]) -> Vec<u32> {
    let mut found: Vec<u32> = messages
        .iter()
        .filter_map(|m| {
            let at = m.find("fault-token-")? + "fault-token-".len();
            m[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    found.sort();
    found
}

/// Send one NOT PROTECTIVELY MARKED message carrying `fault-token-N` to an internal
/// recipient through the gateway's SMTP listener: `Ok` on 250, else the error (with
/// whether it was temporary).
pub fn send(port: u16, n: u32) -> Result<(), (bool, String)> {
    use lettre::{Message, SmtpTransport, Transport};
    let message = Message::builder()
        .from("officer@westmidlands.pnn.police.uk".parse().unwrap())
        .to("colleague@westmidlands.pnn.police.uk".parse().unwrap())
        .subject(format!("[NOT PROTECTIVELY MARKED] fault test {n}"))
        .message_id(Some(format!("<fault-{n}@markgate.test>")))
        .body(format!("fault-token-{n}\r\n"))
        .unwrap();
    let transport = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .build();
    transport
        .send(&message)
        .map(|_| ())
        .map_err(|e| (e.is_transient(), e.to_string()))
}

/// `[delivery.routes.internal]` to a next hop on `port` (plain SMTP), as TOML.
pub fn internal_route(port: u16) -> String {
    format!("\n[delivery.routes.internal]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n")
}
