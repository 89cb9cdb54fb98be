//! PostgreSQL over TLS, the way a managed database is reached: a cluster of
//! its own (never the shared test server) started here on a free port with
//! `ssl = on`, a throw-away CA, and a pg_hba that refuses plain connections.
//! Without TLS compiled into sqlx none of these connections could be made.

use std::path::{Path, PathBuf};
use std::process::Command;

use chiso_storage::{Db, sqlx};

/// A private PostgreSQL cluster serving TLS only, stopped on drop.
struct TlsCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    ca_pem: PathBuf,
}

/// The newest installed PostgreSQL's programs.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server programs under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop().expect("an initdb")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Runs a PostgreSQL program; as root, as the postgres user (initdb and the
/// server refuse to run as root).
fn run(bin: &Path, program: &str, args: &[&str]) {
    let path = bin.join(program);
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&path)
            .args(args)
            .output()
    } else {
        Command::new(&path).args(args).output()
    }
    .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A CA and a server certificate it signed for localhost and 127.0.0.1.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "chiso test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();

    let paths = (
        dir.join("root.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, server_key.serialize_pem()).unwrap();
    paths
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("chiso-pg-tls")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let (ca_pem, cert, key) = certificates(dir.path());
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster directory");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

        let data_arg = data.to_str().unwrap();
        run(
            &bin,
            "initdb",
            &["-D", data_arg, "-U", "postgres", "-A", "trust", "-N"],
        );
        let port = free_port();
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            dir.path().display(),
            cert.display(),
            key.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        // TLS or nothing: a plain connection is refused by the server itself.
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let log = dir.path().join("server.log");
        run(
            &bin,
            "pg_ctl",
            &["-D", data_arg, "-l", log.to_str().unwrap(), "-w", "start"],
        );
        TlsCluster {
            dir,
            bin,
            port,
            ca_pem,
        }
    }

    fn url(&self, query: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?{query}",
            self.port
        )
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        run(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

async fn uses_tls(db: &Db) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_does_what_libpq_documents() {
    let pg = TlsCluster::start();
    let ca = pg.ca_pem.display().to_string();

    // verify-full: the CA signed the certificate and it names the host.
    let db = Db::connect(&pg.url(&format!("sslmode=verify-full&sslrootcert={ca}")))
        .await
        .expect("verify-full with the right CA");
    assert!(uses_tls(&db).await);
    db.close().await;

    for mode in ["verify-ca", "require", "prefer"] {
        let query = format!("sslmode={mode}&sslrootcert={ca}");
        let db = Db::connect(&pg.url(&query))
            .await
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert!(uses_tls(&db).await, "sslmode={mode} encrypts");
        db.close().await;
    }

    // disable: the server's pg_hba refuses a plain connection.
    let err = Db::connect(&pg.url("sslmode=disable")).await.unwrap_err();
    assert!(
        err.to_string().contains("pg_hba.conf") || err.to_string().contains("no encryption"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_with_a_clear_error() {
    let pg = TlsCluster::start();
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = certificates(other.path());
    let err = Db::connect(&pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca.display()
    )))
    .await
    .unwrap_err();
    let text = err.to_string().to_lowercase();
    assert!(text.contains("certificate"), "{err}");
    // The right CA still works: the refusal was the certificate's.
    let db = Db::connect(&pg.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        pg.ca_pem.display()
    )))
    .await
    .expect("the right CA");
    db.close().await;
}
