//! A private OpenLDAP server for the tests: `slapd` with its own configuration, database,
//! CA and certificates in a temporary directory, on free loopback ports (plain and ldaps),
//! loaded with the municipality fixture through the running server. It never uses a system
//! slapd or port 389, and is killed when dropped.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo;

pub const SUFFIX: &str = "dc=kommune,dc=example";
pub const ADMIN_DN: &str = "cn=admin,dc=kommune,dc=example";
pub const SERVICE_DN: &str = "cn=samle-service,ou=services,dc=kommune,dc=example";
pub const SERVICE_PASSWORD: &str = "tjeneste-hemmelig";
/// Every person's password in the fixture.
pub const PASSWORD: &str = "Sommer-æøå-2026";

/// A running private slapd.
pub struct Slapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    admin_password: String,
    pub ldap_port: u16,
    pub ldaps_port: u16,
    /// The CA that signed the server's certificate.
    pub ca_file: PathBuf,
    /// A CA that signed nothing this server shows.
    pub wrong_ca_file: PathBuf,
}

impl Slapd {
    /// Starts slapd and loads `tests/fixtures/ldap/kommune.ldif`.
    pub fn start() -> Slapd {
        Slapd::start_with("")
    }

    /// The same, with `extra` added to the database section of slapd.conf (for example
    /// `security simple_bind=128`).
    pub fn start_with(extra: &str) -> Slapd {
        assert!(
            Path::new("/usr/sbin/slapd").exists() || which("slapd"),
            "slapd is not installed: run scripts/test, which installs slapd"
        );
        for tool in ["ldapmodify", "ldapwhoami", "slappasswd", "openssl"] {
            assert!(
                which(tool),
                "{tool} is not installed: run scripts/test, which installs slapd, ldap-utils and openssl"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        make_certificates(dir.path());
        let admin_password = format!("admin-{}", std::process::id());
        let hash = run(Command::new(slappasswd()).args(["-s", &admin_password]));
        let conf = std::fs::read_to_string(fixtures().join("slapd.conf.in"))
            .unwrap()
            .replace("@DIR@", dir.path().to_str().unwrap())
            .replace("@SUFFIX@", SUFFIX)
            .replace("@ROOTPW@", hash.trim())
            .replace("@EXTRA@", extra);
        std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();

        let mut slapd = Slapd {
            child: None,
            ca_file: dir.path().join("ca.pem"),
            wrong_ca_file: dir.path().join("wrong-ca.pem"),
            dir,
            admin_password,
            ldap_port: 0,
            ldaps_port: 0,
        };
        // A port found free may be taken by someone else before slapd binds it: try again
        // with new ports a few times.
        let mut attempts = 0;
        loop {
            attempts += 1;
            slapd.ldap_port = free_port();
            slapd.ldaps_port = free_port();
            match slapd.launch() {
                Ok(()) => break,
                Err(log) if attempts < 5 => {
                    eprintln!("slapd did not start (attempt {attempts}), retrying: {log}");
                }
                Err(log) => panic!("slapd did not start:\n{log}"),
            }
        }
        slapd.ldapmodify(&std::fs::read_to_string(fixtures().join("kommune.ldif")).unwrap());
        slapd
    }

    /// Runs slapd on the current ports and waits (bounded) until an admin bind succeeds.
    fn launch(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("slapd.log");
        let log = File::create(&log_path).unwrap();
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.ldap_port, self.ldaps_port
        );
        let mut child = Command::new(slapd_bin())
            .args(["-d", "stats", "-f"])
            .arg(self.dir.path().join("slapd.conf"))
            .args(["-h", &urls])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start slapd");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("slapd exited with {status}:\n{log}"));
            }
            let ok = self
                .ldap_tool("ldapwhoami")
                .args(["-D", ADMIN_DN, "-w", &self.admin_password])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("no bind succeeded within 15 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An OpenLDAP command-line tool, talking to this server over StartTLS with the private
    /// CA (so it works even where plain simple binds are refused).
    fn ldap_tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(["-x", "-ZZ", "-H", &self.url()])
            .env("LDAPTLS_CACERT", &self.ca_file)
            .env("LDAPTLS_REQCERT", "demand");
        cmd
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// Applies LDIF as the administrator (`ldapmodify -a`: records without a changetype
    /// are adds).
    pub fn ldapmodify(&self, ldif: &str) {
        let path = self.dir.path().join("change.ldif");
        std::fs::write(&path, ldif).unwrap();
        let out = self
            .ldap_tool("ldapmodify")
            .args(["-a", "-D", ADMIN_DN, "-w"])
            .arg(&self.admin_password)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ldapmodify failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops slapd (the database stays, so [`Slapd::restart`] brings it back as it was).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd again on the same ports, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old process's ports may linger for a moment.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(log) => panic!("slapd did not restart:\n{log}"),
            }
        }
    }

    /// Freezes slapd (SIGSTOP): connections are accepted by the kernel but never answered,
    /// like a hung server.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("slapd is running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// slapd's log so far (`-d stats`): what a failing test wants to see.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// How many bind requests slapd has received so far.
    pub fn binds(&self) -> usize {
        self.log().matches(" BIND dn=").count()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen process is woken first so that it dies like any other (SIGKILL
            // works either way, but a stopped process confuses anyone looking at it).
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}

pub fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/ldap")
}

fn slapd_bin() -> &'static str {
    if Path::new("/usr/sbin/slapd").exists() {
        "/usr/sbin/slapd"
    } else {
        "slapd"
    }
}

fn slappasswd() -> &'static str {
    if Path::new("/usr/sbin/slappasswd").exists() {
        "/usr/sbin/slappasswd"
    } else {
        "slappasswd"
    }
}

fn which(tool: &str) -> bool {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A private CA (EC P-256: milliseconds, where RSA costs seconds), a server certificate it
/// signs for 127.0.0.1 and localhost, and a second CA that signs nothing.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run(Command::new("openssl").current_dir(dir).args(args));
    };
    for key in ["ca.key", "server.key", "wrong-ca.key"] {
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            key,
        ]);
    }
    for (key, pem, cn) in [
        ("ca.key", "ca.pem", "Samle test CA"),
        ("wrong-ca.key", "wrong-ca.pem", "Someone else's CA"),
    ] {
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            pem,
        ]);
    }
    openssl(&[
        "req",
        "-new",
        "-key",
        "server.key",
        "-subj",
        "/CN=localhost",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

impl Slapd {
    /// The `[directory]` table with which a real `samle serve` logs in against this server
    /// (StartTLS with the private CA, the service account, 2 s timeouts). The service
    /// password goes into a file in `dir`, which the table names.
    pub fn portal_directory_toml(&self, dir: &Path) -> String {
        let password_file = dir.join("ldap-service-password");
        std::fs::write(&password_file, format!("{SERVICE_PASSWORD}\n")).unwrap();
        format!(
            r#"[directory]
kind = "ldap"
urls = ["{url}"]
starttls = true
ca_file = "{ca}"
bind_dn = "{SERVICE_DN}"
bind_password_file = "{password_file}"
base_dn = "{SUFFIX}"
timeout = "2s"
connect_timeout = "2s"
"#,
            url = self.url(),
            ca = self.ca_file.display(),
            password_file = password_file.display(),
        )
    }
}
