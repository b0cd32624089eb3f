//! Real local servers the tests talk to. `tests/run.sh` installs them into
//! `target/peers/` (or set `CUSTODIAN_PEERS_DIR`); a missing peer fails the
//! test with instructions rather than skipping it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub fn peers_dir() -> PathBuf {
    std::env::var_os("CUSTODIAN_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `scim2-server` (PyPI) on loopback, stopped on drop.
pub struct ScimServer {
    child: Child,
    pub base: String,
    pub token: String,
    http: reqwest::blocking::Client,
}

impl ScimServer {
    pub fn start() -> ScimServer {
        let bin = peers_dir().join("venv/bin/scim2-server");
        assert!(
            bin.exists(),
            "scim2-server is not installed at {}: run `bash tests/run.sh` once (it installs the test peers), \
             or `python3 -m venv target/peers/venv && target/peers/venv/bin/pip install scim2-server`",
            bin.display()
        );
        let port = free_port();
        let token = format!("tok-{port}");
        let child = Command::new(&bin)
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                &token,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}/v2");
        let http = reqwest::blocking::Client::new();
        let started = Instant::now();
        loop {
            let ok = http
                .get(format!("{base}/ServiceProviderConfig"))
                .bearer_auth(&token)
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "scim2-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ScimServer {
            child,
            base,
            token,
            http,
        }
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json");
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let resp = rb.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    /// Creates a user; returns its id.
    pub fn user(
        &self,
        user_name: &str,
        user_type: Option<&str>,
        manager: Option<&str>,
        department: &str,
    ) -> String {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": user_name,
            "displayName": user_name.replace('.', " "),
            "active": true,
            "emails": [{"value": format!("{user_name}@example.test"), "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": department},
        });
        if let Some(t) = user_type {
            body["userType"] = json!(t);
        }
        if let Some(m) = manager {
            body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"] =
                json!({"value": m});
        }
        self.send(reqwest::Method::POST, "Users", Some(body))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn group(&self, name: &str, members: &[&str]) -> String {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
        });
        self.send(reqwest::Method::POST, "Groups", Some(body))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn set_active(&self, id: &str, active: bool) {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": active}],
        });
        self.send(reqwest::Method::PATCH, &format!("Users/{id}"), Some(body));
    }

    /// A user as the server holds it.
    pub fn get_user(&self, id: &str) -> Value {
        self.send(reqwest::Method::GET, &format!("Users/{id}"), None)
    }

    pub fn delete_user(&self, id: &str) {
        self.send(reqwest::Method::DELETE, &format!("Users/{id}"), None);
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `moto_server` (PyPI `moto[server]`) on loopback, stopped on drop.
/// Every call to it is SigV4-signed: moto routes by the credential scope, and
/// an unsigned request reaches its S3 handler.
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
    http: reqwest::blocking::Client,
}

impl MotoServer {
    /// The access key tests sign with (moto checks no signature).
    pub const KEY_ID: &'static str = "AKIAMOTOTESTKEY00001";
    pub const SECRET: &'static str = "moto-test-secret";

    pub fn start() -> MotoServer {
        let bin = peers_dir().join("venv/bin/moto_server");
        assert!(
            bin.exists(),
            "moto_server is not installed at {}: run `bash tests/run.sh` once (it installs the test peers), \
             or `python3 -m venv target/peers/venv && target/peers/venv/bin/pip install 'moto[server]'`",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}/");
        let http = reqwest::blocking::Client::new();
        let started = Instant::now();
        loop {
            let ok = http
                .get(format!("{endpoint}moto-api/"))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        MotoServer {
            child,
            endpoint,
            http,
        }
    }

    /// A signed IAM Query call with the test key; the XML response.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> String {
        self.call_as(Self::KEY_ID, action, params)
    }

    /// Signed with another access key id: moto then records that key as used.
    pub fn call_as(&self, key_id: &str, action: &str, params: &[(&str, &str)]) -> String {
        use custodian::sync::aws::{query_body, sign_headers, CONTENT_TYPE};
        let body = query_body(action, params);
        let signed = sign_headers(
            key_id,
            Self::SECRET,
            &self.endpoint,
            CONTENT_TYPE,
            &body,
            std::time::SystemTime::now(),
        )
        .unwrap();
        let mut rb = self
            .http
            .post(&self.endpoint)
            .header("content-type", CONTENT_TYPE)
            .body(body);
        for (k, v) in signed {
            rb = rb.header(k, v);
        }
        let resp = rb.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        assert!(status.is_success(), "{action}: {status} {text}");
        text
    }

    /// The text of the first `<name>` element of a response.
    pub fn field(xml: &str, name: &str) -> String {
        let open = format!("<{name}>");
        let start = xml
            .find(&open)
            .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
            + open.len();
        let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
        xml[start..end].to_string()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway OpenLDAP `slapd` (Debian) on loopback with Active Directory's
/// schema (`msuser.schema`, plus managed service accounts from
/// `tests/support/ldap/gmsa.schema`), stopped and removed on drop.
///
/// Limits are AD-like: an unpaged search returns at most `SIZE_LIMIT`
/// entries, a paged one any number (as AD's `MaxPageSize`), and the limits
/// bind every account but the root DN.
pub struct Slapd {
    child: Child,
    _dir: tempfile::TempDir,
    pub url: String,
    /// The throwaway CA (PEM) that signed the server's certificate, for
    /// 127.0.0.1 and localhost: `url` speaks StartTLS with it.
    pub ca: PathBuf,
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1 and
/// localhost, in `dir` (`ca.crt`, `server.crt`, `server.key`), as
/// `tests/support/pg-cluster.sh` makes them.
fn throwaway_tls(dir: &std::path::Path) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl is not installed ({e}): run `bash tests/run.sh`"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let run_s = |s: String| {
        let a = args(s);
        run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    };
    // The CA's subject has no spaces: the arguments are split on them.
    run_s(format!(
        "req -x509 {ec} -days 2 -subj /CN=custodian-test-ldap-ca -keyout ca.key -out ca.crt"
    ));
    run_s(format!(
        "req {ec} -subj /CN=localhost -keyout server.key -out server.csr"
    ));
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    dir.join("ca.crt")
}

impl Slapd {
    pub const BASE: &'static str = "dc=example,dc=org";
    pub const ROOT_DN: &'static str = "cn=admin,dc=example,dc=org";
    pub const ROOT_PW: &'static str = "root-secret";
    /// The read-only account the source binds as (created by `start`).
    pub const READER_DN: &'static str = "cn=custodian-reader,dc=example,dc=org";
    pub const READER_PW: &'static str = "reader-pw-7";
    pub const SIZE_LIMIT: usize = 5;

    pub fn start() -> Slapd {
        let slapd = PathBuf::from("/usr/sbin/slapd");
        assert!(
            slapd.exists() && PathBuf::from("/usr/bin/ldapadd").exists(),
            "OpenLDAP is not installed: run `bash tests/run.sh` once, or \
             `apt-get install slapd ldap-utils` (Debian)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let support = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/ldap");
        let ca = throwaway_tls(dir.path());
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include /etc/ldap/schema/msuser.schema\n\
             include {support}/gmsa.schema\n\
             pidfile {dir}/slapd.pid\n\
             TLSCACertificateFile {dir}/ca.crt\n\
             TLSCertificateFile {dir}/server.crt\n\
             TLSCertificateKeyFile {dir}/server.key\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             sizelimit size.soft={lim} size.hard={lim} size.prtotal=unlimited\n\
             database mdb\n\
             maxsize 67108864\n\
             suffix \"{base}\"\n\
             rootdn \"{root}\"\n\
             rootpw {pw}\n\
             directory {dir}/db\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by * read\n",
            support = support.display(),
            dir = dir.path().display(),
            lim = Self::SIZE_LIMIT,
            base = Self::BASE,
            root = Self::ROOT_DN,
            pw = Self::ROOT_PW,
        );
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new(&slapd)
            .args([
                "-f",
                conf_path.to_str().unwrap(),
                "-h",
                &format!("{url}/"),
                "-d",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "slapd did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let s = Slapd {
            child,
            _dir: dir,
            url,
            ca,
        };
        s.add(&format!(
            "dn: {base}\nobjectClass: dcObject\nobjectClass: organization\nobjectClass: extensibleObject\n\
             dc: example\no: Example\nmaxPwdAge: -36288000000000\n\n\
             dn: {reader}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n\
             cn: custodian-reader\nuserPassword: {rpw}\n",
            base = Self::BASE,
            reader = Self::READER_DN,
            rpw = Self::READER_PW,
        ));
        s
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new(tool)
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                Self::ROOT_DN,
                "-w",
                Self::ROOT_PW,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{ldif}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds entries (LDIF).
    pub fn add(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies LDIF change records (`changetype: modify|delete|...`).
    pub fn modify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    /// Stops the server (the directory stays until drop).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
