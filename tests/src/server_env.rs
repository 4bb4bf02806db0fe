//! Starting a server through its script and reading the `KEY=value` lines it prints.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The `KEY=value` lines printed by `tests/servers/NAME.sh start`.
#[derive(Debug)]
pub(crate) struct ServerEnv {
    script: String,
    values: HashMap<String, String>,
}

impl ServerEnv {
    /// Runs `bash tests/servers/SCRIPT start` and parses what it prints.
    pub(crate) fn start(script: &str) -> Result<Self, String> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("servers")
            .join(script);
        let output = Command::new("bash")
            .arg(&path)
            .arg("start")
            .output()
            .map_err(|error| format!("failed to run bash {}: {error}", path.display()))?;

        if !output.status.success() {
            return Err(format!(
                "`bash {} start` failed ({}); the interoperability tests need this server \
                 (Postfix needs root and Debian's packages, aiosmtpd needs python3 with pip).\n\
                 stderr:\n{}\nstdout:\n{}",
                path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout),
            ));
        }
        let stdout = String::from_utf8(output.stdout).map_err(|error| {
            format!(
                "`bash {} start` printed invalid UTF-8: {error}",
                path.display()
            )
        })?;
        Self::parse(script, &stdout)
    }

    /// Parses `KEY=value` lines, skipping blank lines and taking values verbatim.
    pub(crate) fn parse(script: &str, text: &str) -> Result<Self, String> {
        let mut values = HashMap::new();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!(
                    "{script} printed {line:?}, which is not a KEY=value line"
                ));
            };
            values.insert(key.to_owned(), value.to_owned());
        }
        Ok(Self {
            script: script.to_owned(),
            values,
        })
    }

    pub(crate) fn string(&self, key: &str) -> Result<String, String> {
        self.values.get(key).cloned().ok_or_else(|| {
            format!(
                "{} printed no {key}; its `env` output is out of date",
                self.script
            )
        })
    }

    pub(crate) fn port(&self, key: &str) -> Result<u16, String> {
        let value = self.string(key)?;
        match value.parse::<u16>() {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(format!(
                "{} printed {key}={value}, which is not a TCP port",
                self.script
            )),
        }
    }

    pub(crate) fn seconds(&self, key: &str) -> Result<Duration, String> {
        let value = self.string(key)?;
        match value.parse::<u64>() {
            Ok(seconds) if seconds != 0 => Ok(Duration::from_secs(seconds)),
            _ => Err(format!(
                "{} printed {key}={value}, which is not a whole number of seconds above zero",
                self.script
            )),
        }
    }

    pub(crate) fn path(&self, key: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(self.string(key)?))
    }
}

/// Starts a server once per process and returns it, or panics with the stored reason why it
/// could not be started. A failed start is not retried, so each test reports the first failure.
pub(crate) fn started<T>(
    cell: &'static OnceLock<Result<T, String>>,
    script: &str,
    from_env: fn(&ServerEnv) -> Result<T, String>,
) -> &'static T {
    let server = cell.get_or_init(|| ServerEnv::start(script).and_then(|env| from_env(&env)));
    match server {
        Ok(server) => server,
        Err(message) => panic!("cannot start the test server: {message}"),
    }
}

/// Connects to 127.0.0.1:`port` and returns the server's first line.
#[cfg(test)]
pub(crate) fn read_greeting(port: u16) -> String {
    use std::io::{BufRead, BufReader};
    use std::net::TcpStream;
    use std::time::Duration;

    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_key_value_lines() {
        let env = ServerEnv::parse("x.sh", "A_PORT=2525\n\nB_PATH=/tmp/a=b\n").unwrap();

        assert_eq!(env.port("A_PORT").unwrap(), 2525);
        assert_eq!(env.path("B_PATH").unwrap(), PathBuf::from("/tmp/a=b"));
    }

    #[test]
    fn parse_rejects_line_without_equals() {
        let error = ServerEnv::parse("x.sh", "A=1\nnonsense\n").unwrap_err();

        assert!(error.contains("\"nonsense\""), "{error}");
    }

    #[test]
    fn missing_key_is_named() {
        let env = ServerEnv::parse("x.sh", "A=1\n").unwrap();

        let error = env.string("B").unwrap_err();

        assert!(error.contains("x.sh printed no B"), "{error}");
    }

    #[test]
    fn seconds_are_parsed() {
        let env = ServerEnv::parse("x.sh", "T=2\nZERO=0\nWORD=two\n").unwrap();

        assert_eq!(env.seconds("T").unwrap(), Duration::from_secs(2));
        for key in ["ZERO", "WORD"] {
            let error = env.seconds(key).unwrap_err();

            assert!(error.contains(&format!("{key}=")), "{key}: {error}");
        }
    }

    #[test]
    fn invalid_ports_are_rejected() {
        for (label, value) in [
            ("zero", "0"),
            ("too large", "65536"),
            ("not a number", "smtp"),
        ] {
            let env = ServerEnv::parse("x.sh", &format!("P={value}")).unwrap();

            let error = env.port("P").unwrap_err();

            assert!(error.contains(&format!("P={value}")), "{label}: {error}");
        }
    }
}
