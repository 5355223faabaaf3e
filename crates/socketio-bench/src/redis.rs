//! A real `redis-server` (Debian's package) for tests: started on a free port of 127.0.0.1,
//! without persistence, stopped by PID when dropped; it can be killed and restarted on the same
//! port to test outages. Each test starts its own, so parallel tests never share channels.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    binary: String,
    /// Certificate, key and CA files: the port speaks TLS only (see [`RedisServer::start_tls`]),
    /// and whether clients must present a certificate signed by the CA.
    tls: Option<([String; 3], bool)>,
}

/// The `redis-server` binary: `$REDIS_SERVER`, else `redis-server` on the `PATH`, if it runs.
pub fn redis_binary() -> Option<String> {
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| binary)
}

/// A Redis for a test, or `None` (with the reason printed) when `redis-server` is not installed
/// outside CI. Under CI (`CI` set) a missing `redis-server` fails the test.
pub fn redis_for_test() -> Option<RedisServer> {
    match redis_binary() {
        Some(binary) => Some(RedisServer::start(&binary)),
        None if std::env::var_os("CI").is_some() => {
            panic!("redis-server is not installed (CI installs Debian's redis-server)")
        }
        None => {
            eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
            None
        }
    }
}

impl RedisServer {
    /// Starts `binary` on a free port and waits until it accepts connections.
    pub fn start(binary: &str) -> RedisServer {
        RedisServer::start_with(binary, None)
    }

    /// Starts `binary` with TLS only on a free port (`rediss://`): `cert` and `key` in PEM, and
    /// `ca` for the clients' certificates, which it does not ask for.
    pub fn start_tls(binary: &str, cert: &str, key: &str, ca: &str) -> RedisServer {
        RedisServer::start_with(binary, Some(([cert.into(), key.into(), ca.into()], false)))
    }

    /// As [`RedisServer::start_tls`], but clients must present a certificate signed by `ca`
    /// (`tls-auth-clients yes`, Redis's default once TLS is on).
    pub fn start_mutual_tls(binary: &str, cert: &str, key: &str, ca: &str) -> RedisServer {
        RedisServer::start_with(binary, Some(([cert.into(), key.into(), ca.into()], true)))
    }

    fn start_with(binary: &str, tls: Option<([String; 3], bool)>) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut server = RedisServer {
            child: None,
            port,
            binary: binary.to_owned(),
            tls,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let ports = match &self.tls {
            None => vec!["--port", &port],
            Some(([cert, key, ca], auth)) => vec![
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-cert-file",
                cert,
                "--tls-key-file",
                key,
                "--tls-ca-cert-file",
                ca,
                "--tls-auth-clients",
                if *auth { "yes" } else { "no" },
            ],
        };
        let child = Command::new(&self.binary)
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-primary Redis Cluster of `redis-server` processes on free ports (no replicas),
/// created with `redis-cli --cluster create`; stopped and removed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    /// Starts the nodes and forms the cluster; waits until it serves every slot.
    pub fn start(binary: &str) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "socketio-redis-cluster-{}-{}",
            std::process::id(),
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .expect("free port");
                let child = Command::new(binary)
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args([
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--cluster-enabled",
                        "yes",
                    ])
                    .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                    .args(["--cluster-node-timeout", "5000"])
                    .arg("--dir")
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start redis-server");
                let deadline = Instant::now() + Duration::from_secs(10);
                while TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(Instant::now() < deadline, "redis-server did not come up");
                    std::thread::sleep(Duration::from_millis(20));
                }
                RedisServer {
                    child: Some(child),
                    port,
                    binary: binary.to_owned(),
                    tls: None,
                }
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = nodes.iter().all(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes, dir }
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&node=127.0.0.1:<p3>`.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
