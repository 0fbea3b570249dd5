//! nginx run as a plain process for a test: its own configuration, pid and temporary files
//! under the test's directory, listening on 127.0.0.1 only, killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nginx {
    child: Child,
    pub port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// Start nginx with `servers` (its `server { ... }` blocks, listening on `port`) inside
    /// the `http` block; its files go under `dir/nginx`.
    pub fn start(dir: &Path, port: u16, servers: &str) -> Nginx {
        super::smtp::require("nginx");
        let root = dir.join("nginx");
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        let conf = format!(
            "daemon off; master_process off; pid {r}/nginx.pid; error_log {r}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {r}/tmp; proxy_temp_path {r}/tmp;\n\
             fastcgi_temp_path {r}/tmp; uwsgi_temp_path {r}/tmp; scgi_temp_path {r}/tmp;\n{servers}}}\n",
            r = root.display()
        );
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        assert!(
            super::wait_for_port(port, Duration::from_secs(10)),
            "nginx did not start: {}",
            std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
        );
        Nginx { child, port }
    }
}
