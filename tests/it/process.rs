//! Confab as shipped: the built `confab` binary as a child process, started from an empty folder of
//! its own (no `templates/`, `static/` or `Rocket.toml` beside it), configured only by environment.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The password of the accounts [`Server::new`] creates.
pub const PASSWORD: &str = "a browser password";

/// A port nothing listens on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Confab process with its own working folder, holding its data and uploads.
pub struct Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
    /// The host name in [`Server::url`] (a browser may map another name to loopback).
    pub host: String,
    env: Vec<(String, String)>,
}

impl Server {
    /// A server on SQLite with users `ann` and `bob` (password [`PASSWORD`]) in the open room `general`.
    pub fn new(settings: &[(&str, &str)]) -> Server {
        let server = Server::bare(settings);
        for args in [
            vec!["user", "add", "ann", "ann@example.org"],
            vec!["user", "add", "bob", "bob@example.org"],
            vec!["room", "add", "general", "General"],
            vec!["room", "member", "add", "general", "ann"],
            vec!["room", "member", "add", "general", "bob"],
        ] {
            let out = server.command(&args, &format!("{PASSWORD}\n"));
            assert!(
                out.status.success(),
                "confab {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        server
    }

    /// A server with nothing in its database yet.
    pub fn bare(settings: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let mut env: Vec<(String, String)> = vec![
            ("ROCKET_ADDRESS".into(), "127.0.0.1".into()),
            ("ROCKET_PORT".into(), port.to_string()),
            ("ROCKET_LOG_LEVEL".into(), "off".into()),
        ];
        env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Server {
            child: None,
            dir,
            port,
            host: "127.0.0.1".into(),
            env,
        }
    }

    /// The working folder (empty but for what Confab writes: `data/`, `uploads/`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn confab(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
        command
            .current_dir(self.dir.path())
            .env_remove("ROCKET_TEMPLATE_DIR")
            .env_remove("CONFAB_THEME_DIR")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Runs an operator command with `input` on standard input.
    pub fn command(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .confab()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run confab");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("input");
        child.wait_with_output().expect("wait")
    }

    /// The address of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.host, self.port)
    }

    /// Serves, and waits until the port answers; a process that exits first fails the test with its output.
    pub async fn start(&mut self) {
        let mut child = self
            .confab()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve");
        for _ in 0..600 {
            if let Ok(Some(status)) = child.try_wait() {
                let out = child.wait_with_output().expect("output");
                panic!(
                    "confab exited at start with {status}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        panic!("Confab did not start listening");
    }

    /// Asks the process to stop (SIGTERM, as a service manager does) and returns how it exited.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.take().expect("a running server");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let out = child.wait_with_output().expect("wait");
        if !out.status.success() {
            eprintln!(
                "confab stopped with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status
    }

    /// Stops the process and returns what it printed (standard output, then standard error).
    pub fn stop_with_output(&mut self) -> String {
        let mut child = self.child.take().expect("a running server");
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Stops the process.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
